package config

// HTTP-mode options. Owned by the HTTP subsystem (core/proxy http mode);
// placeholders until it lands.

// HTTPOptions are defaults for http-mode frontends and backends.
type HTTPOptions struct{}

// HTTPFrontend holds a frontend's http-mode options (inlined into Frontend).
type HTTPFrontend struct{}

// HTTPRule holds a rule's http-mode conditions and actions (inlined into Rule).
type HTTPRule struct{}

func (r *HTTPRule) hasHTTPAction() bool { return false }

// HTTPBackend holds a backend's http-mode options (inlined into Backend).
type HTTPBackend struct{}

// HTTPServer holds a server's http-mode options (inlined into Server).
type HTTPServer struct{}

func (c *Cluster) applyHTTPDefaults()                                                 {}
func (c *Cluster) applyHTTPFrontendDefaults(f *Frontend)                              {}
func (c *Cluster) applyHTTPBackendDefaults(b *Backend)                                {}
func (c *Cluster) validateHTTPRule(p *Problems, path string, f *Frontend, r *Rule)    {}
func (c *Cluster) validateHTTPFrontend(p *Problems, path string, f *Frontend)         {}
func (c *Cluster) validateHTTPServer(p *Problems, path string, b *Backend, s *Server) {}
func (c *Cluster) validateHTTPBackend(p *Problems, path string, b *Backend)           {}

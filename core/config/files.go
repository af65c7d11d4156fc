package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// LoadCA reads a PEM bundle of CA certificates: the one loader for every
// ca_file, client_ca and peers/raft CA the config names.
func LoadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", file)
	}
	return pool, nil
}

// CheckFiles reports the files the proxy sections name that cannot be used
// on this machine: error pages, TLS certificates and keys, CA bundles —
// each problem positioned like Parse's (as `haproxy -c` checks its
// errorfile and crt files). It is not part of Parse: the document is
// replicated and the files are node-local, so a node that applies a
// document for the cluster does not judge another node's files. vipgate
// check and a standalone vipgate run call it.
func (c *Cluster) CheckFiles(name string) error {
	p := &Problems{file: name, pos: map[string]Position{}}
	var root yaml.Node
	if err := yaml.Unmarshal(c.Source, &root); err == nil && len(root.Content) > 0 {
		indexPositions(name, root.Content[0], "", p.pos)
	}
	c.checkFiles(p)
	return p.Err()
}

// LoadAndCheckFiles is LoadFile and CheckFiles in one: every problem of
// both is reported, so that one missing file (a Lua plugin's, which
// validation reads) does not hide the others (a certificate, an error
// page) until it is fixed. The cluster is returned only without problems.
func LoadAndCheckFiles(name string, known Known) (*Cluster, error) {
	return load(name, true, &known)
}

// ParseAndCheckFiles is LoadAndCheckFiles on a document already read.
func ParseAndCheckFiles(name string, data []byte, known Known) (*Cluster, error) {
	return parseDoc(name, data, true, &known)
}

// checkFiles adds the problems of the files c names to p.
func (c *Cluster) checkFiles(p *Problems) {
	seen := map[string]bool{} // each file once, where it is first named
	once := func(kind, file string) bool {
		k := kind + "\x00" + file
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	errorFiles := func(path string, files map[int]string) {
		for _, st := range slices.Sorted(maps.Keys(files)) {
			file := files[st]
			if !once("page", file) {
				continue
			}
			b, err := os.ReadFile(file)
			switch {
			case err != nil:
				p.Addf(Path(path, "error_files", st), "error file: %v", err)
			case bytes.HasPrefix(b, []byte("HTTP/")) && !bytes.Contains(b, []byte("\r\n\r\n")) && !bytes.Contains(b, []byte("\n\n")):
				p.Addf(Path(path, "error_files", st), "error file %s starts with HTTP/ but has no end of head (an empty line)", file)
			}
		}
	}
	caFile := func(path, file string) {
		if file == "" || !once("ca", file) {
			return
		}
		if _, err := LoadCA(file); err != nil {
			p.Addf(path, "%v", err)
		}
	}

	errorFiles("defaults.http", c.Defaults.HTTP.ErrorFiles)
	caFile("defaults.check.ca_file", c.Defaults.Check.CA)
	for i := range c.Frontends {
		f := &c.Frontends[i]
		errorFiles(Path("frontends", i, "http"), f.HTTP.ErrorFiles)
		if t := f.TLS; t != nil {
			for j, cf := range t.Certificates {
				key := cf.Key
				if key == "" {
					key = cf.Cert
				}
				if !once("cert", cf.Cert+"\x00"+key) {
					continue
				}
				if _, err := tls.LoadX509KeyPair(cf.Cert, key); err != nil {
					p.Addf(Path("frontends", i, "tls", "certificates", j), "certificate %s: %v", cf.Cert, err)
				}
			}
			caFile(Path("frontends", i, "tls", "client_ca"), t.ClientCA)
		}
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		errorFiles(Path("backends", i, "http"), b.HTTP.ErrorFiles)
		if s := b.SSL; s != nil {
			caFile(Path("backends", i, "ssl", "ca_file"), s.CAFile)
		}
		if ch := b.Check; ch != nil {
			caFile(Path("backends", i, "check", "ca_file"), ch.CA)
		}
	}
}

// Package proxy is the data plane: listeners, tcp mode (zero-copy relay) and
// http mode, timeouts, queues, retries and redispatch.
package proxy

// Proxy is the live data plane of a node.
type Proxy struct{}

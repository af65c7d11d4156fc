//go:build !linux

package proxy

// freebind: elsewhere than Linux a frontend on a VIP binds once the node
// holds the address (net.ipv4.ip_nonlocal_bind has no portable twin).
func freebind(uintptr, bool) error { return nil }

//go:build !linux

package proxy

// listenShards: elsewhere than Linux SO_REUSEPORT does not spread
// connections over the sockets sharing a port (BSDs give them all to the
// last one bound), so a bind has one socket.
func listenShards() int { return 1 }

func reusePort(uintptr) error { return nil }

func probeBind(string, string, bool, bool) error { return nil }

package proxy

// parseHello extracts SNI/ALPN from buffered client bytes; done is true when
// no more bytes are needed (complete hello, or not TLS at all).
// Placeholder until core/proxy/inspect lands.
func parseHello(b []byte) (*clientHello, bool) {
	if len(b) > 0 && b[0] != 0x16 {
		return nil, true
	}
	if len(b) >= 5 {
		need := 5 + (int(b[3])<<8 | int(b[4]))
		return nil, len(b) >= need
	}
	return nil, false
}

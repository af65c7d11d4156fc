package inspect

import (
	"crypto/tls"
	"testing"
)

// FuzzHello feeds arbitrary bytes to both parsers: no panic, and a parsed
// hello's fields stay within their protocol bounds.
func FuzzHello(f *testing.F) {
	f.Add(clientHello(f, &tls.Config{ServerName: "a.example", NextProtos: []string{"h2"}}))
	f.Add(refragment(clientHello(f, &tls.Config{ServerName: "b.example", MaxVersion: tls.VersionTLS12}), 7))
	f.Add(serverHello(f, clientHello(f, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}), tls.VersionTLS12))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (*Hello, error){ParseClientHello, ParseServerHello} {
			h, err := parse(b)
			if err != nil {
				continue
			}
			if len(h.SessionID) > 32 || len(h.SNI) > 255 || h.Len > len(b) || h.Len < 9 {
				t.Fatalf("out of bounds: %+v", h)
			}
		}
	})
}

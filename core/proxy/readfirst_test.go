package proxy

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/proxy/inspect"
)

// tls12ServerHello is a ServerHello handshake message (header included)
// with a 32-byte session ID of sid and no extensions.
func tls12ServerHello(sid byte) []byte {
	body := []byte{3, 3}
	body = append(body, bytes.Repeat([]byte{7}, 32)...) // random
	body = append(body, 32)
	body = append(body, bytes.Repeat([]byte{sid}, 32)...)
	body = append(body, 0xc0, 0x2f, 0) // cipher suite, compression
	return append([]byte{2, 0, 0, byte(len(body))}, body...)
}

// records wraps handshake bytes into TLS records of at most n bytes.
func records(hs []byte, n int) []byte {
	var out []byte
	for len(hs) > 0 {
		k := min(n, len(hs))
		out = append(out, 0x16, 3, 3, byte(k>>8), byte(k))
		out = append(out, hs[:k]...)
		hs = hs[k:]
	}
	return out
}

// TestReadFirstWholeServerHello: the proxy reads the server's first bytes
// until the ServerHello is complete, however the server split it into
// records and writes (session-ID persistence learns the ID from it).
func TestReadFirstWholeServerHello(t *testing.T) {
	sh := tls12ServerHello(0xab)
	one := records(sh, 1<<14)
	split := records(sh, 20) // the message spans four records
	for _, tc := range []struct {
		name   string
		writes [][]byte
		hello  bool
	}{
		{"one record, one write", [][]byte{one}, true},
		{"one record, two writes", [][]byte{one[:3], one[3:]}, true},
		{"record header split", [][]byte{one[:9], one[9:]}, true},
		{"message across records", [][]byte{split[:25], split[25:50], split[50:]}, true},
		{"records written one by one", [][]byte{split[:25], split[25:]}, true},
		{"not TLS", [][]byte{[]byte("220 smtp ready\r\n"), []byte("never read")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() {
				for _, w := range tc.writes {
					if _, err := b.Write(w); err != nil {
						return
					}
				}
			}()
			got, err := readFirst(context.Background(), a, 5*time.Second)
			if err != nil {
				t.Fatalf("readFirst: %v", err)
			}
			h, perr := inspect.ParseServerHello(got)
			if !tc.hello {
				if !bytes.Equal(got, tc.writes[0]) {
					t.Errorf("got %q, want the first write only", got)
				}
				return
			}
			if perr != nil {
				t.Fatalf("%d bytes read, ServerHello: %v", len(got), perr)
			}
			if !bytes.Equal(h.SessionID, bytes.Repeat([]byte{0xab}, 32)) {
				t.Errorf("session ID %x", h.SessionID)
			}
		})
	}
}

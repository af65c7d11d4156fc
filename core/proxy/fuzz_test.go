package proxy

import (
	"net"
	"testing"
)

// FuzzProxyHeader: the PROXY protocol reader never panics or hangs on any
// input.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nGET /"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(append(append([]byte{}, v2sig...), 0x21, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() { a.Write(data); a.Close() }()
		c, err := readProxyHeader(b)
		if err == nil && c == nil {
			t.Fatal("nil conn without error")
		}
		b.Close()
	})
}

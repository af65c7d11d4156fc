package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPLingeringClose: an answer given before the request body was
// read to its end (here a deny rule refusing an upload) is followed by a
// clean FIN, and the rest of the upload is read and dropped, as nginx and
// HAProxy do; closing at once with unread bytes resets the connection,
// and a reset can make the client's stack drop the answer unread.
func TestHTTPLingeringClose(t *testing.T) {
	be := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("    rules: [{deny: 403, path_prefix: [/upload]}]", "", oneBackend(be.addr())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// Far more than the proxy reads with the head: the rest waits in
		// its socket when it answers.
		_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n")
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 32 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	// After the answer: a FIN (EOF), not a reset.
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer: %v, want EOF (a clean close, not a reset)", err)
	}
}

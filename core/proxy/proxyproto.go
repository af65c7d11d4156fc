package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt): v1 is a
// text line, v2 a binary header with a 12-byte signature. accept_proxy reads
// either; send_proxy writes the configured one.

var v2sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxiedConn reports the addresses from the PROXY header and replays any
// bytes read past it.
type proxiedConn struct {
	net.Conn
	r        io.Reader
	src, dst net.Addr
}

func (c *proxiedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *proxiedConn) RemoteAddr() net.Addr       { return c.src }
func (c *proxiedConn) LocalAddr() net.Addr        { return c.dst }

// CloseWrite forwards half-close to the underlying TCP connection.
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func readProxyHeader(c net.Conn) (net.Conn, error) {
	br := bufio.NewReaderSize(c, 256)
	head, err := br.Peek(12)
	if err != nil {
		return nil, fmt.Errorf("reading PROXY header: %w", err)
	}
	var src, dst net.Addr
	switch {
	case bytes.Equal(head, v2sig):
		src, dst, err = readV2(br)
	case bytes.HasPrefix(head, []byte("PROXY ")):
		src, dst, err = readV1(br)
	default:
		return nil, errors.New("no PROXY protocol header")
	}
	if err != nil {
		return nil, err
	}
	if src == nil { // LOCAL / UNKNOWN: keep the real addresses
		src, dst = c.RemoteAddr(), c.LocalAddr()
	}
	return &proxiedConn{Conn: c, r: br, src: src, dst: dst}, nil
}

func readV1(br *bufio.Reader) (net.Addr, net.Addr, error) {
	// A v1 line is at most 107 bytes including CRLF.
	var line []byte
	for len(line) < 108 {
		b, err := br.ReadByte()
		if err != nil {
			return nil, nil, fmt.Errorf("PROXY v1: %w", err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
	}
	s := string(line)
	if !strings.HasSuffix(s, "\r\n") {
		return nil, nil, errors.New("PROXY v1: line too long or not CRLF-terminated")
	}
	f := strings.Fields(strings.TrimSuffix(s, "\r\n"))
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return nil, nil, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return nil, nil, fmt.Errorf("PROXY v1: malformed line %q", strings.TrimSpace(s))
	}
	sa, err1 := netip.ParseAddr(f[2])
	da, err2 := netip.ParseAddr(f[3])
	sp, err3 := strconv.ParseUint(f[4], 10, 16)
	dp, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, nil, fmt.Errorf("PROXY v1: %w", err)
	}
	if (f[1] == "TCP4") != sa.Is4() || sa.Is4() != da.Is4() {
		return nil, nil, errors.New("PROXY v1: address family mismatch")
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(sa, uint16(sp))),
		net.TCPAddrFromAddrPort(netip.AddrPortFrom(da, uint16(dp))), nil
}

func readV2(br *bufio.Reader) (net.Addr, net.Addr, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, nil, fmt.Errorf("PROXY v2: %w", err)
	}
	if hdr[12]>>4 != 2 {
		return nil, nil, fmt.Errorf("PROXY v2: version %d", hdr[12]>>4)
	}
	cmd := hdr[12] & 0xf
	fam := hdr[13]
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, nil, fmt.Errorf("PROXY v2: %w", err)
	}
	if cmd == 0 { // LOCAL (health checks of the sender)
		return nil, nil, nil
	}
	if cmd != 1 {
		return nil, nil, fmt.Errorf("PROXY v2: unknown command %d", cmd)
	}
	switch fam {
	case 0x11: // TCP over IPv4
		if n < 12 {
			return nil, nil, errors.New("PROXY v2: short IPv4 block")
		}
		sa, _ := netip.AddrFromSlice(body[0:4])
		da, _ := netip.AddrFromSlice(body[4:8])
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(sa, binary.BigEndian.Uint16(body[8:10]))),
			net.TCPAddrFromAddrPort(netip.AddrPortFrom(da, binary.BigEndian.Uint16(body[10:12]))), nil
	case 0x21: // TCP over IPv6
		if n < 36 {
			return nil, nil, errors.New("PROXY v2: short IPv6 block")
		}
		sa, _ := netip.AddrFromSlice(body[0:16])
		da, _ := netip.AddrFromSlice(body[16:32])
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(sa, binary.BigEndian.Uint16(body[32:34]))),
			net.TCPAddrFromAddrPort(netip.AddrPortFrom(da, binary.BigEndian.Uint16(body[34:36]))), nil
	}
	return nil, nil, nil // UNSPEC or unix: keep the real addresses
}

// writeProxyHeader sends a PROXY header describing the client connection.
func writeProxyHeader(w io.Writer, version string, src, dst net.Addr) error {
	s, d := addrPort(src), addrPort(dst)
	if version == "v1" {
		var line string
		switch {
		case s.Addr().Is4() && d.Addr().Is4():
			line = fmt.Sprintf("PROXY TCP4 %s %s %d %d\r\n", s.Addr(), d.Addr(), s.Port(), d.Port())
		case s.Addr().Is6() && d.Addr().Is6():
			line = fmt.Sprintf("PROXY TCP6 %s %s %d %d\r\n", s.Addr(), d.Addr(), s.Port(), d.Port())
		default:
			line = "PROXY UNKNOWN\r\n"
		}
		_, err := io.WriteString(w, line)
		return err
	}
	buf := make([]byte, 0, 52)
	buf = append(buf, v2sig...)
	buf = append(buf, 0x21) // version 2, PROXY
	if s.Addr().Is4() && d.Addr().Is4() {
		buf = append(buf, 0x11, 0, 12)
		a, b := s.Addr().As4(), d.Addr().As4()
		buf = append(buf, a[:]...)
		buf = append(buf, b[:]...)
	} else {
		buf = append(buf, 0x21, 0, 36)
		a, b := s.Addr().As16(), d.Addr().As16()
		buf = append(buf, a[:]...)
		buf = append(buf, b[:]...)
	}
	buf = binary.BigEndian.AppendUint16(buf, s.Port())
	buf = binary.BigEndian.AppendUint16(buf, d.Port())
	_, err := w.Write(buf)
	return err
}

// rawConn returns the connection to relay: the TCP connection itself when
// nothing is buffered in front of it, so splice applies.
func rawConn(c net.Conn) net.Conn { return c }

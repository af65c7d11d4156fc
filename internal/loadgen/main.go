// Command loadgen is the open-loop HTTP/1.1 load generator of the latency
// benchmarks (mk/bench-lib.sh, bench_latency): requests go out at a constant
// rate whatever the proxy does, and each one's latency is measured from the
// time it was meant to be sent, not from when a connection got free to send
// it. A closed-loop client (wrk) waits for each answer before sending the
// next, so a proxy that stalls is simply asked less during the stall and its
// slow answers hide from the percentiles (coordinated omission); here the
// requests due during a stall queue up and their wait counts, as it would for
// users who do not slow down because the site does.
//
// Not part of the product binary: `go run ./internal/loadgen -h`.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	addr     string        // host:port
	rate     float64       // requests per second, all connections together
	dur      time.Duration // how long requests are scheduled
	conns    int           // connections (each sends one request at a time)
	close    bool          // one request per connection (Connection: close)
	path     string
	deadline time.Duration // per request: a request slower than this is an error
	tls      bool          // HTTPS (the certificate is not verified: a bench client)
}

type result struct {
	sent, errs int
	elapsed    time.Duration
	lat        []time.Duration // sorted, successful requests only
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.lat)))
	if i >= len(r.lat) {
		i = len(r.lat) - 1
	}
	return r.lat[i]
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:80", "host:port to send to")
	flag.Float64Var(&c.rate, "rate", 1000, "requests per second (constant, open loop)")
	flag.DurationVar(&c.dur, "d", 5*time.Second, "duration")
	flag.IntVar(&c.conns, "c", 64, "connections")
	flag.BoolVar(&c.close, "close", false, "one request per connection (Connection: close)")
	flag.StringVar(&c.path, "path", "/", "request path")
	flag.BoolVar(&c.tls, "tls", false, "HTTPS (the server's certificate is not verified)")
	flag.DurationVar(&c.deadline, "timeout", 5*time.Second, "a request slower than this counts as an error")
	flag.Parse()
	r, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	// One line, read by mk/bench-lib.sh: achieved rate, p50 p99 p99.9 (ms), errors.
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	fmt.Printf("rate %.0f p50 %s p99 %s p99.9 %s errors %d\n",
		float64(len(r.lat))/r.elapsed.Seconds(), ms(r.pct(50)), ms(r.pct(99)), ms(r.pct(99.9)), r.errs)
}

// run sends c.rate*c.dur requests at their scheduled times: request i is
// due at start + i/rate. Whichever connection is free takes the next one; if
// none is, the request waits, and that wait is part of its latency.
func run(c config) (result, error) {
	if c.rate <= 0 || c.conns <= 0 || c.dur <= 0 {
		return result{}, fmt.Errorf("rate, connections and duration must be positive (rate %v, c %d, d %v)", c.rate, c.conns, c.dur)
	}
	total := int64(c.rate * c.dur.Seconds())
	interval := float64(time.Second) / c.rate
	req := []byte("GET " + c.path + " HTTP/1.1\r\nHost: " + c.addr + "\r\n\r\n")
	if c.close {
		req = []byte("GET " + c.path + " HTTP/1.1\r\nHost: " + c.addr + "\r\nConnection: close\r\n\r\n")
	}
	var next atomic.Int64
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c.conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, total/int64(c.conns)+16)
			errs := 0
			var cl *client
			for {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				due := start.Add(time.Duration(float64(i) * interval))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if cl == nil {
					var err error
					if cl, err = dial(c.addr, c.tls); err != nil {
						errs++
						continue
					}
				}
				keep, err := cl.do(req, due.Add(c.deadline))
				if err != nil {
					errs++
					cl.close()
					cl = nil
					continue
				}
				lat = append(lat, time.Since(due))
				if !keep || c.close {
					cl.close()
					cl = nil
				}
			}
			if cl != nil {
				cl.close()
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.sent = int(total)
	slices.Sort(res.lat)
	return res, nil
}

type client struct {
	conn net.Conn
	br   *bufio.Reader
}

func dial(addr string, useTLS bool) (*client, error) {
	var conn net.Conn
	var err error
	if useTLS {
		conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, br: bufio.NewReaderSize(conn, 16<<10)}, nil
}

func (cl *client) close() { _ = cl.conn.Close() }

// do writes one request and reads its response (Content-Length framed, or
// up to EOF when the server closes); keep is false when the server said it
// closes the connection.
func (cl *client) do(req []byte, deadline time.Time) (keep bool, err error) {
	_ = cl.conn.SetDeadline(deadline)
	if _, err := cl.conn.Write(req); err != nil {
		return false, err
	}
	line, err := cl.br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("status line: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || len(line) < 12 || line[9] != '2' {
		return false, fmt.Errorf("unexpected status line %q", bytes.TrimSpace(line))
	}
	clen, keep := -1, true
	for {
		h, err := cl.br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("header: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, val, _ := bytes.Cut(h, []byte(":"))
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if clen, err = strconv.Atoi(string(val)); err != nil {
				return false, fmt.Errorf("content-length %q", val)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(val, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return false, errors.New("chunked responses are not supported")
		}
	}
	if clen < 0 {
		_, err = io.Copy(io.Discard, cl.br)
		return false, err
	}
	_, err = cl.br.Discard(clen)
	return keep, err
}

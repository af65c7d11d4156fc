package exchange2dc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/internal/testnet"
)

// probe is one client request: TLS 1.2 handshake with an Exchange server
// through the VIP, GET /who, the server's name back.
type probe struct {
	start, end time.Time
	target     string
	server     string
	err        error
}

// prober is a client that keeps sending requests, one after the other
// (workers in parallel), and keeps every result for the measurements.
type prober struct {
	name    string
	host    *testnet.Host
	target  func() string // host:port to connect to now
	workers int
	pause   time.Duration

	mu      sync.Mutex
	results []probe
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (p *prober) run(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	for w := 0; w < p.workers; w++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				target := p.target()
				r := probe{start: time.Now(), target: target}
				if target == "" {
					r.err = fmt.Errorf("no address (DNS gave none)")
				} else {
					r.server, r.err = fetchWho(p.host.NS, target)
				}
				r.end = time.Now()
				p.mu.Lock()
				p.results = append(p.results, r)
				p.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(p.pause):
				}
			}
		}()
	}
}

func (p *prober) stop() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

func fetchWho(ns, addr string) (string, error) {
	c, err := dialIn(ns, "tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: service, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}) //nolint:gosec // lab certificate
	if _, err := io.WriteString(tc, "GET /who HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(tc)
	if err != nil && len(body) == 0 {
		return "", err
	}
	_, name, ok := strings.Cut(string(body), "\r\n\r\n")
	if !ok || strings.TrimSpace(name) == "" {
		return "", fmt.Errorf("no answer from a server (%d bytes)", len(body))
	}
	return strings.TrimSpace(name), nil
}

// window returns the probes that started in [from, to).
func (p *prober) window(from, to time.Time) []probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []probe
	for _, r := range p.results {
		if !r.start.Before(from) && r.start.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// stats over the probes started in [from, to): how many, how many failed,
// the first error, and the servers that answered.
func (p *prober) stats(from, to time.Time) (n, failed int, firstErr string, servers map[string]int) {
	servers = map[string]int{}
	for _, r := range p.window(from, to) {
		n++
		if r.err != nil {
			failed++
			if firstErr == "" {
				firstErr = r.err.Error()
			}
			continue
		}
		servers[r.server]++
	}
	return
}

// gap is the longest time, between from and to, during which no request
// completed successfully: what a user of this client noticed.
func (p *prober) gap(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, worst := from, time.Duration(0)
	for _, r := range p.results {
		if r.err != nil || r.end.Before(from) || r.end.After(to) {
			continue
		}
		if d := r.end.Sub(last); d > worst {
			worst = d
		}
		last = r.end
	}
	if d := to.Sub(last); d > worst {
		worst = d
	}
	return worst
}

// firstOK is when the first successful request that started after t ended
// (zero if none).
func (p *prober) firstOK(t time.Time, match func(probe) bool) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.results {
		if r.err == nil && !r.start.Before(t) && (match == nil || match(r)) {
			return r.end
		}
	}
	return time.Time{}
}

// resolver is a stub resolver with the zone's name servers in order: the
// first that answers wins; its answer is kept for refresh (like a client
// honouring a short TTL).
type resolver struct {
	host    *testnet.Host
	servers []string
	refresh time.Duration

	mu     sync.Mutex
	addr   string
	cancel context.CancelFunc
}

func (r *resolver) run(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.resolve()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.refresh):
				r.resolve()
			}
		}
	}()
}

func (r *resolver) resolve() {
	for _, s := range r.servers {
		if a, err := dnsA(r.host, s, service); err == nil && len(a) > 0 {
			r.mu.Lock()
			r.addr = a[0] + ":443"
			r.mu.Unlock()
			return
		}
	}
}

func (r *resolver) target() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

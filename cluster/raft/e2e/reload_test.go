package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// startHTTPBackends starts n HTTP servers answering 200 "ok <name>".
func startHTTPBackends(t *testing.T, n int) []string {
	var addrs []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("h%d", i)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "ok %s", name)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// startEchoBackends starts n line-echo TCP servers.
func startEchoBackends(t *testing.T, n int) []string {
	var addrs []string
	for i := 0; i < n; i++ {
		addrs = append(addrs, testenv.Serve(t, func(c net.Conn) { _, _ = io.Copy(c, c) }))
	}
	return addrs
}

// reloadDoc has an HTTP and a TCP frontend; the backends use the servers
// whose bit is set in mask (never empty), with the given weights.
func reloadDoc(httpPort, tcpPort int, web, echo []string, mask int, weights []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `datacenters: [{name: dc1, role: primary}]
failover: {mode: manual}
defaults:
  timeouts: {connect: 2s, client: 30s, server: 30s}
frontends:
  - {name: web, mode: http, bind: ["127.0.0.1:%d"], default_backend: app}
  - {name: tcp, mode: tcp, bind: ["127.0.0.1:%d"], default_backend: echo}
backends:
  - name: app
    mode: http
    servers:
`, httpPort, tcpPort)
	for i, a := range web {
		if mask&(1<<i) != 0 {
			fmt.Fprintf(&b, "      - {name: w%d, address: %q, weight: %d}\n", i, a, weights[i])
		}
	}
	b.WriteString("  - name: echo\n    mode: tcp\n    servers:\n")
	for i, a := range echo {
		if mask&(1<<i) != 0 {
			fmt.Fprintf(&b, "      - {name: e%d, address: %q, weight: %d}\n", i, a, weights[i])
		}
	}
	return b.String()
}

// Under continuous HTTP and TCP load, 50 config applies that add and
// remove servers and change weights cause no client error, and a TCP
// connection established before the first apply survives all of them.
func TestZeroDropReloadUnderLoad(t *testing.T) {
	web := startHTTPBackends(t, 4)
	echo := startEchoBackends(t, 4)
	httpPort, tcpPort := testenv.FreePort(t), testenv.FreePort(t)
	c := newCluster(t)
	gw := c.add("gw", "dc1", "gateway", reloadDoc(httpPort, tcpPort, web, echo, 0b1111, []int{1, 1, 1, 1}))
	c.add("w1", "", "witness", "")
	c.add("w2", "", "witness", "")
	c.waitAll("joined", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	httpURL := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	testenv.Eventually(t, 20*time.Second, "frontends answering", func() bool {
		r, err := http.Get(httpURL)
		if err != nil {
			return false
		}
		r.Body.Close()
		c, err := net.Dial("tcp", tcpAddr)
		if err == nil {
			c.Close()
		}
		return r.StatusCode == 200 && err == nil
	})

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var okHTTP, okTCP atomic.Int64
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		errMu.Lock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	for i := 0; i < 4; i++ {
		keepAlive := i%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}}
			defer cl.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := cl.Post(httpURL, "text/plain", strings.NewReader("payload"))
				if err != nil {
					fail("http (keepalive=%v): %v", keepAlive, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("ok ")) {
					fail("http (keepalive=%v): status %d body %q err %v", keepAlive, resp.StatusCode, body, err)
					continue
				}
				okHTTP.Add(1)
			}
		}()
	}
	echoOnce := func(c net.Conn, r *bufio.Reader, msg string) error {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != msg+"\n" {
			return fmt.Errorf("echo %q, want %q", line, msg)
		}
		return nil
	}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				c, err := net.Dial("tcp", tcpAddr)
				if err != nil {
					fail("tcp dial: %v", err)
					continue
				}
				err = echoOnce(c, bufio.NewReader(c), fmt.Sprintf("short %d-%d", i, n))
				c.Close()
				if err != nil {
					fail("tcp short: %v", err)
					continue
				}
				okTCP.Add(1)
			}
		}()
	}
	// One long-lived connection across every reload.
	long, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	longR := bufio.NewReader(long)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			if err := echoOnce(long, longR, fmt.Sprintf("long %d", n)); err != nil {
				fail("long-lived tcp connection: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	var mask int
	for v := 2; v <= 51; v++ {
		mask = 1 + rng.IntN(15)
		if v == 51 {
			mask = 0b0100 // end on one server, to see the last apply is live
		}
		w := []int{1 + rng.IntN(9), 1 + rng.IntN(9), 1 + rng.IntN(9), 1 + rng.IntN(9)}
		body, _ := json.Marshal(map[string]any{"author": "load-test", "yaml": reloadDoc(httpPort, tcpPort, web, echo, mask, w)})
		resp, err := http.Post("http://"+gw.admin+"/api/v1/config", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("apply %d: %v", v, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("apply %d: %d %s", v, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond) // pace the applies so load runs between them
	}
	testenv.Eventually(t, 20*time.Second, "version 51 applied", func() bool { return gw.version() == 51 })
	before := okHTTP.Load() + okTCP.Load()
	testenv.Eventually(t, 10*time.Second, "traffic still flowing after the last apply", func() bool {
		return okHTTP.Load()+okTCP.Load() > before+20
	})
	testenv.Eventually(t, 10*time.Second, "only h2 serves after the last apply", func() bool {
		for i := 0; i < 10; i++ {
			r, err := http.Get(httpURL)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if string(b) != "ok h2" {
				return false
			}
		}
		return true
	})
	stop()
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	t.Logf("%d HTTP requests and %d TCP sessions without error during 50 applies", okHTTP.Load(), okTCP.Load())
	if okHTTP.Load() < 100 || okTCP.Load() < 100 {
		t.Errorf("too little traffic to mean anything: %d HTTP, %d TCP", okHTTP.Load(), okTCP.Load())
	}
}

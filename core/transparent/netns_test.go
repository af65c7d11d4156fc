package transparent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

// The lab: a client segment (198.18.10.0/24) and a server segment
// (198.18.20.0/24) joined by the vipgate node, the servers' default
// gateway (as a director under LVS-NAT):
//
//	client 198.18.10.2, .3 ── gw 198.18.10.1 | 198.18.20.1 ── srv 198.18.20.2
//	                                                          default via 198.18.20.1
//
// The node does not forward (ip_forward is 0 in a new namespace): a server
// reply to a client address reaches the proxy only through the routing
// vipgate installs, so every assertion on the client's address depends on
// it.
const (
	gwClientSide = "198.18.10.1"
	gwServerSide = "198.18.20.1"
	srvAddr      = "198.18.20.2"
	clientA      = "198.18.10.2"
	clientB      = "198.18.10.3"
)

type lab struct {
	t        *testing.T
	dir      string
	client   *testnet.Host
	gw, srv  *testnet.Host
	eximLog  string
	nginxLog string
}

func newLab(t *testing.T) *lab {
	testenv.Short(t)
	testenv.RequireTool(t, "exim4")
	testenv.RequireTool(t, "nginx")
	cnet, snet := testnet.New(t), testnet.New(t)
	l := &lab{t: t}
	l.client = cnet.AddHost("client", clientA+"/24", clientB+"/24")
	l.gw = cnet.AddHost("gw", gwClientSide+"/24")
	snet.Attach(l.gw, "eth1", gwServerSide+"/24")
	l.srv = snet.AddHost("srv", srvAddr+"/24")
	l.srv.MustRun(t, "ip", "route", "add", "default", "via", gwServerSide)
	// exim's delivery runs as Debian-exim: a directory it can enter.
	dir, err := os.MkdirTemp("/tmp", "vipgate-tsrc-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	l.dir = dir
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab files kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return l
}

// start runs a program in h's namespace until the test ends.
func (l *lab) start(h *testnet.Host, name string, args ...string) *exec.Cmd {
	l.t.Helper()
	lf, err := os.Create(filepath.Join(l.dir, name+".out"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := h.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	l.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// startExim runs the "Exchange" SMTP server: like an Exchange receive
// connector it relays only for the client network, by the peer's address.
func (l *lab) startExim() {
	d := filepath.Join(l.dir, "exim")
	for _, s := range []string{"spool", "log", "Maildir"} {
		_ = os.MkdirAll(filepath.Join(d, s), 0o777)
		_ = os.Chmod(filepath.Join(d, s), 0o777)
	}
	_ = os.Chmod(d, 0o755)
	l.eximLog = filepath.Join(d, "log", "mainlog")
	conf := fmt.Sprintf(`primary_hostname = exch.test
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
log_selector = +smtp_connection
local_interfaces = %[2]s
host_lookup =
rfc1413_hosts =
keep_environment =
tls_advertise_hosts =
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept hosts = 198.18.10.0/24
  deny message = relay not permitted for $sender_host_address
begin routers
all:
  driver = accept
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = %[1]s/Maildir
  maildir_format
  create_directory
  user = Debian-exim
  group = Debian-exim
`, d, srvAddr)
	cf := filepath.Join(d, "exim.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.start(l.srv, "exim", testenv.RequireTool(l.t, "exim4"), "-C", cf, "-bdf", "-oX", "25")
}

// startNginx runs the web server, logging each request's peer address
// and server-side connection number.
func (l *lab) startNginx() {
	d := filepath.Join(l.dir, "nginx")
	_ = os.MkdirAll(filepath.Join(d, "tmp"), 0o755)
	l.nginxLog = filepath.Join(d, "access.log")
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  log_format peer 'peer=$remote_addr conn=$connection uri=$request_uri';
  access_log %[1]s/access.log peer;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  keepalive_requests 1000;
  server {
    listen %[2]s:80;
    location / { return 200 "peer=$remote_addr\n"; }
  }
}
`, d, srvAddr)
	cf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.start(l.srv, "nginx", testenv.RequireTool(l.t, "nginx"), "-c", cf, "-e", filepath.Join(d, "error.log"))
}

const clusterDoc = `
defaults: {mode: tcp, timeouts: {connect: 2s, client: 10s, server: 10s}, check: {inter: 500ms, rise: 1, fall: 2}}
frontends:
  - {name: smtp, bind: "198.18.10.1:25", default_backend: exch-smtp}
  - {name: web, mode: http, bind: "198.18.10.1:80", default_backend: web}
backends:
  - name: exch-smtp
    source: {usesrc: clientip, setup_routing: true}
    check: {kind: tcp}
    servers:
      - {name: ex1, address: "198.18.20.2:25"}
  - name: web
    mode: http
    http: {reuse: always}
    source: {usesrc: clientip, setup_routing: true}
    check: {kind: http, http: {path: /health}}
    servers:
      - {name: web1, address: "198.18.20.2:80"}
`

// vipgate is a running vipgate process in the gw namespace.
type vipgate struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startVipgate runs vipgate in the gw namespace, under the command wrap
// when given (setpriv to drop privileges).
func (l *lab) startVipgate(bin, doc string, wrap ...string) *vipgate {
	d := filepath.Join(l.dir, "vipgate")
	_ = os.MkdirAll(d, 0o777)
	_ = os.Chmod(d, 0o777) // for a vipgate without root
	node := fmt.Sprintf("name: gw1\ndatacenter: dc1\ndata_dir: %s\nadmin: {listen: \"127.0.0.1:9900\"}\nlog: {level: debug}\n", d)
	nf, cf := filepath.Join(d, "node.yaml"), filepath.Join(d, "cluster.yaml")
	_ = os.WriteFile(nf, []byte(node), 0o600)
	_ = os.WriteFile(cf, []byte(doc), 0o600)
	v := &vipgate{done: make(chan struct{}), log: filepath.Join(d, "vipgate.log")}
	lf, err := os.Create(v.log)
	if err != nil {
		l.t.Fatal(err)
	}
	_ = os.Chmod(nf, 0o644)
	_ = os.Chmod(cf, 0o644)
	v.cmd = l.gw.Command(bin, "run", "--node", nf, "--config", cf)
	if len(wrap) > 0 {
		v.cmd = l.gw.Command(wrap[0], append(wrap[1:], bin, "run", "--node", nf, "--config", cf)...)
	}
	v.cmd.Stdout, v.cmd.Stderr = lf, lf
	if err := v.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { _ = v.cmd.Wait(); lf.Close(); close(v.done) }()
	l.t.Cleanup(func() { v.stop(l.t) })
	return v
}

// stop ends vipgate as systemd would (SIGTERM) and waits for it.
func (v *vipgate) stop(t *testing.T) {
	select {
	case <-v.done:
		return
	default:
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(15 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.done
		t.Errorf("vipgate did not stop on SIGTERM within 15s")
	}
}

func buildVipgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vipgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vipgate/vipgate/cmd/vipgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// routing reports what of the routing the gw namespace has.
func (l *lab) routing() (rule, route, nft bool) {
	out, _ := l.gw.Run("ip", "rule", "show")
	rule = strings.Contains(out, fmt.Sprintf("fwmark %#x lookup %d", Mark, Table))
	out, _ = l.gw.Run("ip", "route", "show", "table", fmt.Sprint(Table))
	route = strings.Contains(out, "local default dev lo")
	out6, _ := l.gw.Run("ip", "-6", "rule", "show")
	rule = rule && strings.Contains(out6, fmt.Sprintf("fwmark %#x lookup %d", Mark, Table))
	nft = nftTableIn(l.t, l.gw)
	return rule, route, nft
}

// nftTableIn reports whether the namespace has vipgate's nftables table
// (asked through netlink: the nft tool is not needed).
func nftTableIn(t *testing.T, h *testnet.Host) bool {
	t.Helper()
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTableOfFamily(NFTable, nftables.TableFamilyINet)
	return err == nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, what, cond)
}

func logHas(file string, re *regexp.Regexp) bool {
	b, err := os.ReadFile(file)
	return err == nil && re.Match(b)
}

// sendMail sends one message through the proxy from the client address
// from and returns the server's answer to RCPT.
func (l *lab) sendMail(from, subject string) error {
	c, err := l.client.Dial("tcp4", from, gwClientSide+":25", 5*time.Second)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	sc, err := smtp.NewClient(c, "exch.test")
	if err != nil {
		c.Close()
		return err
	}
	defer sc.Close()
	if err := sc.Hello("client.test"); err != nil {
		return err
	}
	return finishMail(sc, subject)
}

// finishMail sends one message on a greeted session and quits.
func finishMail(sc *smtp.Client, subject string) error {
	if err := sc.Mail("user@client.test"); err != nil {
		return err
	}
	if err := sc.Rcpt("someone@elsewhere.test"); err != nil {
		return err
	}
	w, err := sc.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Subject: %s\r\n\r\nthrough vipgate\r\n", subject)
	if err := w.Close(); err != nil {
		return err
	}
	return sc.Quit()
}

// httpClient makes keep-alive requests from the client address from.
func (l *lab) httpClient(from string) *http.Client {
	tr := &http.Transport{
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return l.client.Dial("tcp4", from, addr, 5*time.Second)
		},
		MaxIdleConnsPerHost: 1,
	}
	l.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestTransparentSourceNetns(t *testing.T) {
	l := newLab(t)
	bin := buildVipgate(t)
	l.startExim()
	l.startNginx()
	if rule, route, nft := l.routing(); rule || route || nft {
		t.Fatalf("routing present before vipgate runs: rule %v route %v nft %v", rule, route, nft)
	}
	v := l.startVipgate(bin, clusterDoc)
	eventually(t, "vipgate installs the routing (ip rule, local route, nftables table)", func() bool {
		rule, route, nft := l.routing()
		return rule && route && nft
	})

	t.Run("smtp", func(t *testing.T) {
		// The first attempt may meet the server before its first check.
		eventually(t, "a mail relayed through the tcp backend", func() bool {
			return l.sendMail(clientA, "tsrc-smtp") == nil
		})
		// exim saw the client, not the node: it relayed by the client's
		// address (its ACL refuses everyone else) and logged it.
		received := regexp.MustCompile(`<= user@client\.test H=\(client\.test\) \[` + regexp.QuoteMeta(clientA) + `\]`)
		eventually(t, "exim logs the mail from "+clientA, func() bool { return logHas(l.eximLog, received) })
		if logHas(l.eximLog, regexp.MustCompile(`<= user@client\.test H=\S+ \[`+regexp.QuoteMeta(gwServerSide)+`\]`)) {
			t.Error("exim received a mail from the node's own address")
		}
		// Checks come from the node's own address (every 500ms: the mail
		// may have gone before the first).
		checks := regexp.MustCompile(`SMTP connection from \[` + regexp.QuoteMeta(gwServerSide) + `\]`)
		eventually(t, "a health check connection from the node's address in exim's log", func() bool { return logHas(l.eximLog, checks) })
	})

	t.Run("http keep-alive per client", func(t *testing.T) {
		clients := map[string]*http.Client{clientA: l.httpClient(clientA), clientB: l.httpClient(clientB)}
		for i := 0; i < 8; i++ {
			from := []string{clientA, clientB}[i%2]
			var body string
			eventually(t, "an answer through the http backend", func() bool {
				resp, err := clients[from].Get(fmt.Sprintf("http://%s/req-%d", gwClientSide, i))
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
				return resp.StatusCode == 200
			})
			if want := "peer=" + from + "\n"; body != want {
				t.Fatalf("request %d from %s: the server answered %q, want %q", i, from, body, want)
			}
		}
		// nginx's log: each client's requests came on connections from
		// its own address, and no server connection carried both.
		conns := map[string]string{} // nginx connection → peer
		perPeer := map[string]map[string]bool{}
		eventually(t, "nginx logs the 8 requests", func() bool {
			b, _ := os.ReadFile(l.nginxLog)
			return strings.Count(string(b), "uri=/req-") >= 8
		})
		f, _ := os.Open(l.nginxLog)
		defer f.Close()
		re := regexp.MustCompile(`^peer=(\S+) conn=(\d+) uri=/req-(\d+)$`)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			m := re.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			peer, conn := m[1], m[2]
			if p, ok := conns[conn]; ok && p != peer {
				t.Errorf("server connection %s carried requests of %s and %s", conn, p, peer)
			}
			conns[conn] = peer
			if perPeer[peer] == nil {
				perPeer[peer] = map[string]bool{}
			}
			perPeer[peer][conn] = true
		}
		for _, c := range []string{clientA, clientB} {
			if len(perPeer[c]) == 0 {
				t.Errorf("no request logged from %s: %v", c, perPeer)
			}
			// Keep-alive kept: a client's requests share its connection.
			if len(perPeer[c]) > 1 {
				t.Errorf("client %s's 4 keep-alive requests used %d server connections", c, len(perPeer[c]))
			}
		}
	})

	// A reload without setup_routing removes the routing; one with it
	// installs it again.
	cf := filepath.Join(l.dir, "vipgate", "cluster.yaml")
	for _, want := range []bool{false, true} {
		doc := clusterDoc
		if !want {
			doc = strings.ReplaceAll(doc, "setup_routing: true", "setup_routing: false")
		}
		if err := os.WriteFile(cf, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = v.cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, fmt.Sprintf("the routing follows a reload (setup_routing %v)", want), func() bool {
			rule, route, nft := l.routing()
			return rule == want && route == want && nft == want
		})
	}

	// A graceful stop (SIGTERM): the listeners close at once, but a
	// session under way finishes, from its client's address: the routing
	// stays until the proxy is done.
	c, err := l.client.Dial("tcp4", clientB, gwClientSide+":25", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	sc, err := smtp.NewClient(c, "exch.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, "the listener closed by the graceful stop", func() bool {
		c, err := l.client.Dial("tcp4", clientA, gwClientSide+":25", time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if rule, route, nft := l.routing(); !rule || !route || !nft {
		t.Errorf("routing gone while a session is still under way: rule %v route %v nft %v", rule, route, nft)
	}
	if err := finishMail(sc, "tsrc-graceful"); err != nil {
		t.Errorf("the session under way during the graceful stop: %v", err)
	}
	v.stop(t)
	if rule, route, nft := l.routing(); rule || route || nft {
		t.Errorf("routing left after vipgate exited: rule %v route %v nft %v", rule, route, nft)
	}
	if b, _ := os.ReadFile(v.log); t.Failed() {
		t.Logf("vipgate log:\n%s", b)
	}

	// A crash (SIGKILL) leaves the routing; the next run takes it over
	// (no second rule) and removes it when it stops.
	v = l.startVipgate(bin, clusterDoc)
	eventually(t, "vipgate installs the routing again", func() bool {
		rule, route, nft := l.routing()
		return rule && route && nft
	})
	_ = v.cmd.Process.Kill()
	<-v.done
	if rule, route, nft := l.routing(); !rule || !route || !nft {
		t.Fatalf("after SIGKILL: rule %v route %v nft %v (nothing could remove them)", rule, route, nft)
	}
	v = l.startVipgate(bin, clusterDoc)
	eventually(t, "a new run serves after a crash", func() bool { return l.sendMail(clientB, "tsrc-after-crash") == nil })
	out, _ := l.gw.Run("ip", "rule", "show")
	if n := strings.Count(out, fmt.Sprintf("lookup %d", Table)); n != 1 {
		t.Errorf("%d ip rules after a crash and a restart, want 1:\n%s", n, out)
	}
	v.stop(t)
	if rule, route, nft := l.routing(); rule || route || nft {
		t.Errorf("routing left after the restarted vipgate exited: rule %v route %v nft %v", rule, route, nft)
	}
}

// TestTransparentSourceNoCapability: a vipgate without CAP_NET_ADMIN and
// CAP_NET_RAW says so, naming the capability, for the routing and for
// the connections, and keeps running (its other frontends serve).
func TestTransparentSourceNoCapability(t *testing.T) {
	l := newLab(t)
	setpriv := testenv.RequireTool(t, "setpriv")
	bin := buildVipgate(t)
	_ = os.Chmod(filepath.Dir(bin), 0o755)
	doc := strings.NewReplacer(`"198.18.10.1:25"`, `"198.18.10.1:2525"`, `"198.18.10.1:80"`, `"198.18.10.1:8080"`).Replace(clusterDoc)
	v := l.startVipgate(bin, doc, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all")
	eventually(t, "vipgate reports the missing capabilities", func() bool {
		b, _ := os.ReadFile(v.log)
		return strings.Contains(string(b), "installing the nftables rule needs CAP_NET_ADMIN") &&
			strings.Contains(string(b), "IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW")
	})
	select {
	case <-v.done:
		b, _ := os.ReadFile(v.log)
		t.Fatalf("vipgate exited:\n%s", b)
	default:
	}
	if rule, route, nft := l.routing(); rule || route || nft {
		t.Errorf("routing installed without the capability? rule %v route %v nft %v", rule, route, nft)
	}
	v.stop(t)
	if t.Failed() {
		b, _ := os.ReadFile(v.log)
		t.Logf("vipgate log:\n%s", b)
	}
}

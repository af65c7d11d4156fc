package importer

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/internal/testenv"
)

// Exchange 2016/2019 as the common HAProxy guides lay it out: SSL bridging
// in http mode (one :443 frontend routing by path, :80 in the same frontend
// redirecting), and layer 4 (servers without a port behind :80 and :443,
// SMTP on :25 and :587, IMAPS with a TLS check).
const exchangeHTTP = `global
    maxconn 10000
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-server-verify none
defaults
    mode http
    option httplog
    option forwardfor
    option http-keep-alive
    timeout connect 5s
    timeout client 30m
    timeout server 30m
    timeout http-request 10s
frontend fe_exchange
    bind 198.18.0.100:80 name http
    bind 198.18.0.100:443 name https ssl crt CERT alpn h2,http/1.1
    http-request redirect scheme https code 301 unless { ssl_fc }
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    acl autodiscover path_beg -i /autodiscover
    acl mapi path_beg -i /mapi
    acl eas path_beg -i /microsoft-server-activesync
    use_backend be_autodiscover if autodiscover
    use_backend be_mapi if mapi
    use_backend be_eas if eas
    default_backend be_owa
backend be_autodiscover
    option httpchk GET /autodiscover/healthcheck.htm
    http-check expect status 200
    server ex1 198.18.1.11:443 check ssl inter 5s fall 3 rise 2
    server ex2 198.18.1.12:443 check ssl inter 5s fall 3 rise 2
backend be_mapi
    option httpchk GET /mapi/healthcheck.htm
    http-check expect status 200
    server ex1 198.18.1.11:443 check ssl inter 5s fall 3 rise 2
    server ex2 198.18.1.12:443 check ssl inter 5s fall 3 rise 2
backend be_eas
    balance leastconn
    option httpchk GET /microsoft-server-activesync/healthcheck.htm
    http-check expect status 200
    server ex1 198.18.1.11:443 check ssl inter 5s fall 3 rise 2
    server ex2 198.18.1.12:443 check ssl inter 5s fall 3 rise 2
backend be_owa
    cookie SERVERID insert indirect nocache
    option httpchk GET /owa/healthcheck.htm
    http-check expect status 200
    server ex1 198.18.1.11:443 check ssl inter 5s fall 3 rise 2 cookie ex1
    server ex2 198.18.1.12:443 check ssl inter 5s fall 3 rise 2 cookie ex2
`

const exchangeTCP = `global
    maxconn 40000
    ssl-server-verify none
defaults
    mode tcp
    option redispatch
    retries 3
    timeout connect 10s
    timeout client 1h
    timeout server 1h
frontend ft_exchange
    bind 198.18.0.100:443 name https
    bind 198.18.0.100:80 name http
    default_backend bk_exchange
backend bk_exchange
    balance source
    stick-table type ip size 200k expire 30m
    stick on src
    option ssl-hello-chk
    default-server inter 3s rise 2 fall 3
    server ex1 198.18.1.11 check port 443
    server ex2 198.18.1.12 check port 443
listen smtp
    bind 198.18.0.100:25
    bind 198.18.0.100:587
    option smtpchk HELO lb.example.com
    server ex1 198.18.1.11 check port 25
    server ex2 198.18.1.12 check port 25
listen imaps
    bind 198.18.0.100:993
    balance leastconn
    option tcp-check
    tcp-check connect port 993 ssl
    server ex1 198.18.1.11:993 check
    server ex2 198.18.1.12:993 check
`

const exchangeKA = `global_defs {
    router_id gw1
    enable_script_security
    script_user root
}
vrrp_script chk_haproxy {
    script "/usr/bin/pidof haproxy"
    interval 2
    weight 2
}
vrrp_instance VI_EXCH {
    state BACKUP
    interface eth0
    virtual_router_id 60
    priority 150
    nopreempt
    authentication {
        auth_type PASS
        auth_pass Exch2019
    }
    unicast_src_ip 198.18.0.11
    unicast_peer {
        198.18.0.12
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
    track_script {
        chk_haproxy
    }
    notify_master "/etc/keepalived/notify.sh master"
}
`

// The layouts are what HAProxy and keepalived accept, and import whole:
// no backend or frontend is lost, and what they rely on carries over.
func TestExchangeLayouts(t *testing.T) {
	haproxy := testenv.RequireTool(t, "haproxy")
	openssl := testenv.RequireTool(t, "openssl")
	dir := t.TempDir()
	cert := filepath.Join(dir, "mail.pem")
	if out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mail.example.com",
		"-keyout", cert, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	valid := func(t *testing.T, cfg string) {
		p := filepath.Join(dir, "h.cfg")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(haproxy, "-c", "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("haproxy refuses the input: %v\n%s", err, out)
		}
	}
	t.Run("http", func(t *testing.T) {
		cfg := strings.Replace(exchangeHTTP, "CERT", cert, 1)
		valid(t, cfg)
		c := importHA(t, cfg).Cluster
		f, plain := c.Frontend("fe_exchange"), c.Frontend("fe_exchange-plain")
		if f == nil || plain == nil || f.TLS == nil || f.TLS.MinVersion != "1.2" || plain.TLS != nil {
			t.Fatalf("frontends = %+v", c.Frontends)
		}
		if len(plain.Rules) == 0 || plain.Rules[0].Redirect == nil || plain.Rules[0].Redirect.Scheme != "https" {
			t.Errorf(":80 does not redirect first: %+v", plain.Rules)
		}
		if len(f.Rules) != 4 || f.Rules[0].SetHeader["X-Forwarded-Proto"] != "https" || f.Rules[1].PathRegex != "(?i)^/autodiscover" {
			t.Errorf(":443 rules = %+v", f.Rules)
		}
		if len(c.Backends) != 4 {
			t.Errorf("backends = %+v", c.Backends)
		}
		for _, b := range c.Backends {
			if b.SSL == nil || b.SSL.Verify != "none" || b.Check == nil || b.Check.Kind != "http" || b.Check.Verify != "none" {
				t.Errorf("backend %s: ssl %+v check %+v, want TLS to the servers and http checks, unverified", b.Name, b.SSL, b.Check)
			}
		}
	})
	t.Run("tcp", func(t *testing.T) {
		valid(t, exchangeTCP)
		r := importHA(t, exchangeTCP)
		c := r.Cluster
		var names []string
		for _, b := range c.Backends {
			names = append(names, b.Name)
		}
		if want := []string{"bk_exchange-80", "bk_exchange-443", "smtp-25", "smtp-587", "imaps"}; !reflect.DeepEqual(names, want) {
			t.Errorf("backends = %v, want %v; warnings %v", names, want, r.Warnings)
		}
		if len(c.Frontends) != 3 {
			t.Errorf("frontends = %+v", c.Frontends)
		}
		if ck := c.Backend("imaps").Check; ck == nil || !ck.SSL || ck.Verify != "none" {
			t.Errorf("imaps check = %+v, want TLS unverified", ck)
		}
	})
	t.Run("keepalived", func(t *testing.T) {
		keepalived := testenv.RequireTool(t, "keepalived")
		gw2 := strings.NewReplacer("router_id gw1", "router_id gw2", "priority 150", "priority 100",
			"unicast_src_ip 198.18.0.11", "unicast_src_ip 198.18.0.12", "        198.18.0.12\n", "        198.18.0.11\n").Replace(exchangeKA)
		for i, f := range []string{exchangeKA, gw2} {
			p := filepath.Join(dir, "keepalived.conf")
			if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(keepalived, "-t", "-f", p).CombinedOutput(); err != nil {
				t.Fatalf("keepalived -t refuses file %d: %v\n%s", i+1, err, out)
			}
		}
		r, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(exchangeTCP)},
			Keepalived: []*Input{{Name: "k1.conf", Data: []byte(exchangeKA)}, {Name: "k2.conf", Data: []byte(gw2)}}, FS: mapFS{}})
		if err != nil {
			t.Fatal(err)
		}
		in := r.Cluster.VRRP.Instances
		if len(in) != 1 || in[0].PreemptOn() || !reflect.DeepEqual(in[0].Priorities, map[string]int{"gw1": 150, "gw2": 100}) ||
			len(in[0].Track) != 1 || in[0].Track[0].Kind != "proxy" {
			t.Errorf("instances = %+v", in)
		}
	})
}

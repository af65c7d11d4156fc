package importer

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vipgate/vipgate/internal/testenv"
)

// The example inputs are what HAProxy and keepalived themselves accept:
// the importer is tested on real-world files, not on a dialect of its own.
func TestExampleInputsAreValid(t *testing.T) {
	t.Run("haproxy", func(t *testing.T) {
		haproxy := testenv.RequireTool(t, "haproxy")
		out, err := exec.Command(haproxy, "-c", "-f", filepath.Join(exampleDir, "haproxy.cfg")).CombinedOutput()
		if err != nil {
			t.Fatalf("haproxy -c: %v\n%s", err, out)
		}
	})
	t.Run("keepalived", func(t *testing.T) {
		keepalived := testenv.RequireTool(t, "keepalived")
		for _, f := range []string{"keepalived.conf", "keepalived.gw2-a.conf"} {
			out, err := exec.Command(keepalived, "-t", "-f", filepath.Join(exampleDir, f)).CombinedOutput()
			if err != nil {
				t.Errorf("keepalived -t %s: %v\n%s", f, err, out)
			}
		}
	})
}

// Inputs the importer's own tests rely on are valid HAProxy: a test that
// passes on a file HAProxy refuses proves nothing about migrations.
func TestDirectiveInputsAreValidHAProxy(t *testing.T) {
	haproxy := testenv.RequireTool(t, "haproxy")
	inputs := map[string]string{
		"ssl session id": "backend b\n  mode tcp\n  stick-table type binary len 32 size 30k expire 10s\n  acl clienthello req_ssl_hello_type 1\n  acl serverhello rep_ssl_hello_type 2\n" +
			"  tcp-request inspect-delay 5s\n  tcp-request content accept if clienthello\n  tcp-response content accept if serverhello\n" +
			"  stick on payload_lv(43,1) if clienthello\n  stick store-response payload_lv(43,1) if serverhello\n  server s 198.18.1.1:443\n",
		"acls": "frontend f\n  mode http\n  bind :8080\n  acl h hdr_dom(host) -i example.com\n  acl p path_beg /api\n  acl m method POST\n" +
			"  use_backend b if h p || m\n  http-request redirect scheme https code 301 if !{ ssl_fc }\n  default_backend b\nbackend b\n  mode http\n  server s 198.18.1.1:80\n",
		"checks": "backend b\n  option httpchk\n  http-check send meth GET uri /ews/healthcheck.htm ver HTTP/1.1 hdr Host exch2016.domain.com\n  http-check expect rstatus ^2\n" +
			"  default-server inter 3s fastinter 1s downinter 5s rise 2 fall 3 slowstart 30s\n  server s 198.18.1.1:443 check check-ssl verify none on-marked-down shutdown-sessions send-proxy-v2\n",
	}
	// Timeouts and a listener keep haproxy -c from warning or exiting 2.
	const frame = "defaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
	inputs["ssl session id"] += "frontend f\n  bind :8443\n  default_backend b\n"
	inputs["checks"] += "frontend f\n  bind :8443\n  default_backend b\n"
	dir := t.TempDir()
	for name, cfg := range inputs {
		cfg = frame + cfg
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "h.cfg")
			if err := writeFileAtomic(p, []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(haproxy, "-c", "-f", p).CombinedOutput(); err != nil {
				t.Fatalf("haproxy refuses the input: %v\n%s", err, out)
			}
			r := importHA(t, cfg)
			if len(r.Cluster.Backends) == 0 {
				t.Errorf("nothing translated; warnings: %v", r.Warnings)
			}
			for _, w := range r.Warnings {
				t.Errorf("unexpected warning: %s", w)
			}
		})
	}
}

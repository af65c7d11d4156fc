package importer

import (
	"errors"
	"os"
	"testing"
)

// The importer must never panic, and must either refuse an input with a
// positioned *ParseError or produce a document config.Parse accepts.
func checkFuzzResult(t *testing.T, r *Result, err error) {
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error that is not a parse error: %v", err)
		}
		return
	}
	if r.Cluster == nil {
		t.Fatal("no cluster and no error")
	}
}

func FuzzHAProxy(f *testing.F) {
	if b, err := os.ReadFile("../../../examples/migration/haproxy.cfg"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"frontend f\n bind :80\n default_backend b\nbackend b\n server s 198.18.0.1:80 check\n",
		"frontend f\n mode http\n bind :80\n acl a hdr_dom(host) -i x.com\n acl b path_beg /api\n use_backend b if a b || { src 10.0.0.0/8 }\n",
		"defaults\n mode http\n default-server inter 1 weight 999\nlisten l\n bind :::443 ssl crt /a.pem\n server s x:1 check cookie \"a b\"\n",
		"backend b\n option httpchk GET x HTTP/1.1\\r\\nHost:\\ a\n http-check expect rstatus (\n server s 1.2.3.4 check\n",
		"frontend a\n bind :1\n default_backend b\nfrontend c\n bind :1\n default_backend b\nbackend b\n server s 1.1.1.1:1\n server s 1.1.1.1:2\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cfg string) {
		// mapFS: a `crt DIR` must not send the fuzzer through the real file system.
		r, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(cfg)}, FS: mapFS{}})
		checkFuzzResult(t, r, err)
	})
}

func FuzzKeepalived(f *testing.F) {
	if b, err := os.ReadFile("../../../examples/migration/keepalived.conf"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"vrrp_instance V {\n state MASTER\n virtual_router_id 51\n virtual_ipaddress {\n 198.18.0.10/24 dev eth0\n }\n}\n",
		"global_defs { notification_email { a@b } }\ninclude x.conf\n",
		"a\n{\n{\n}\n}\n",
		"vrrp_script s { script \"x\" weight -300 }\n",
	} {
		f.Add(s)
	}
	fsys := mapFS{"x.conf": "vrrp_sync_group G { group { V } }\n", "loop.conf": "include loop.conf\n"}
	f.Fuzz(func(t *testing.T, cfg string) {
		r, err := Import(Options{Keepalived: []*Input{{Name: "k.conf", Data: []byte(cfg)}}, FS: fsys})
		checkFuzzResult(t, r, err)
	})
}

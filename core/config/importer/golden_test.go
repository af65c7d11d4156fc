package importer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

var update = flag.Bool("update", false, "rewrite examples/migration/cluster.yaml and warnings.txt from the inputs")

const exampleDir = "../../../examples/migration"

// importExample translates the reference deployment's files as
// `vipgate import --haproxy haproxy.cfg --keepalived keepalived.conf
// --keepalived keepalived.gw2-a.conf` run in examples/migration would.
func importExample(t testing.TB) *Result {
	t.Helper()
	h, err := os.ReadFile(filepath.Join(exampleDir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	k1, err := os.ReadFile(filepath.Join(exampleDir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := os.ReadFile(filepath.Join(exampleDir, "keepalived.gw2-a.conf"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Import(Options{HAProxy: &Input{Name: "haproxy.cfg", Data: h},
		Keepalived: []*Input{{Name: "keepalived.conf", Data: k1}, {Name: "keepalived.gw2-a.conf", Data: k2}}, FS: mapFS{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func warningsText(r *Result) []byte {
	var b bytes.Buffer
	for _, w := range r.Warnings {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestGoldenExample(t *testing.T) {
	r := importExample(t)
	files := map[string][]byte{"cluster.yaml": r.YAML, "warnings.txt": warningsText(r)}
	for name, got := range files {
		path := filepath.Join(exampleDir, name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./core/config/importer -run Golden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the translation; run `go test ./core/config/importer -run Golden -update` and review the diff.\n--- got ---\n%s", name, got)
		}
	}
}

// Every committed example document must load as a cluster config.
func TestExamplesParse(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(exampleDir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no examples (%v)", err)
	}
	for _, n := range names {
		if _, err := config.LoadFile(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// The reference translation keeps what matters for Exchange.
func TestExampleContent(t *testing.T) {
	c := importExample(t).Cluster
	https := c.Frontend("ft_exchange_https")
	if https == nil || https.Mode != "tcp" || https.DefaultBackend != "bk_exchange_https" || https.InspectDelay.D().Seconds() != 5 {
		t.Fatalf("https frontend = %+v", https)
	}
	be := c.Backend("bk_exchange_https")
	if be == nil || be.Check == nil || be.Check.HTTP == nil {
		t.Fatalf("backend = %+v", be)
	}
	if h := be.Check.HTTP; h.Path != "/ews/healthcheck.htm" || h.Host != "exch2016.domain.com" || !be.Check.SSL || be.Check.Verify != "none" {
		t.Errorf("check = %+v %+v", be.Check, h)
	}
	if n := len(be.Servers); n != 5 || !be.Servers[4].Backup {
		t.Errorf("servers = %+v", be.Servers)
	}
	redirect := c.Frontend("ft_exchange_http")
	if redirect == nil || len(redirect.Rules) != 1 || redirect.Rules[0].Redirect == nil || redirect.Rules[0].Redirect.Scheme != "https" {
		t.Errorf("redirect frontend = %+v", redirect)
	}
	y := string(importExample(t).YAML)
	for _, want := range []string{"TLS session ID", "per node"} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func BenchmarkImportExample(b *testing.B) {
	h, _ := os.ReadFile(filepath.Join(exampleDir, "haproxy.cfg"))
	k, _ := os.ReadFile(filepath.Join(exampleDir, "keepalived.conf"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Import(Options{HAProxy: &Input{Name: "haproxy.cfg", Data: h}, Keepalived: []*Input{{Name: "keepalived.conf", Data: k}}}); err != nil {
			b.Fatal(err)
		}
	}
}

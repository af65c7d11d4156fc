package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/internal/testcert"
)

// TestCheckFiles: the files a document names are checked where they are
// named (as haproxy -c checks errorfile and crt): missing or unusable ones
// are problems with their position; usable ones, and each file once, are not.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c1, k1 := testcert.PEM(t, testcert.Cert{})
	certPEM, keyPEM := string(c1), string(k1)
	cert, keyf, both := write("c.pem", certPEM), write("k.pem", keyPEM), write("both.pem", certPEM+keyPEM)
	page, rawBad := write("503.html", "<p>down</p>"), write("502.http", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n")
	notCA, certOnly := write("notca.pem", "hello"), write("certonly.pem", certPEM)
	missing := filepath.Join(dir, "missing.pem")

	doc := fmt.Sprintf(`defaults:
  mode: http
  http: {error_files: {503: %q}}
frontends:
  - name: ok
    bind: "127.0.0.1:8443"
    default_backend: b
    tls: {certificates: [{cert: %q, key: %q}, {cert: %q}], client_ca: %q}
  - name: bad
    bind: "127.0.0.1:8444"
    default_backend: b
    http: {error_files: {502: %q, 504: %q}}
    tls: {certificates: [{cert: %q, key: %q}], client_ca: %q}
backends:
  - name: b
    ssl: {verify: required, ca_file: %q}
    check: {kind: tls, ca_file: %q}
    servers: [{name: s, address: "127.0.0.1:1"}]
`, page, cert, keyf, both, cert, rawBad, missing, certOnly, certOnly, notCA, missing, missing)
	c, err := Parse("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckFiles("f.yaml")
	if err == nil {
		t.Fatal("unusable files accepted")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		"f.yaml:12:31: frontends.1.http.error_files.502: error file " + rawBad + " starts with HTTP/ but has no end of head",
		"f.yaml:12:", // 504: missing
		"f.yaml:13:26: frontends.1.tls.certificates.0: certificate " + certOnly + ":",
		"f.yaml:13:", // client_ca without a certificate
		"f.yaml:16:38: backends.0.ssl.ca_file: CA file: open " + missing + ": no such file or directory",
	}
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d (the missing CA once, the good files not at all):\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
		}
	}
	if !strings.Contains(err.Error(), "error_files.504: error file: open "+missing) || !strings.Contains(err.Error(), "client_ca: CA file "+notCA+": no PEM certificate found") {
		t.Errorf("problems:\n%v", err)
	}

	// Every file usable: no problem.
	good := strings.NewReplacer(rawBad, page, missing, cert, notCA, cert, certOnly, both).Replace(doc)
	c, err = Parse("f.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles("f.yaml"); err != nil {
		t.Errorf("usable files refused:\n%v", err)
	}
}

// TestMissingLuaFileHidesNothing: a missing Lua plugin file (read by
// validation) and a missing certificate (read by the file check) are both
// reported in one run.
func TestMissingLuaFileHidesNothing(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "cluster.yaml")
	doc := `frontends:
  - name: f
    bind: "127.0.0.1:8443"
    default_backend: b
    tls: {certificates: [{cert: missing-cert.pem}]}
backends: [{name: b, servers: [{name: s, address: "127.0.0.1:1"}]}]
lua:
  plugins:
    - {name: p, file: missing.lua}
`
	if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAndCheckFiles(name, testKnown)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		name + ":5:", "certificate missing-cert.pem",
		name + ":9:", `plugin "p": open ` + filepath.Join(dir, "missing.lua"),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

package track

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/plugins/check/builtin"
)

func fakeProc(t *testing.T, procs map[string][2]string) string {
	root := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(root, pid)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "comm"), []byte(p[0]+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(p[1]), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	return root
}

func TestProcess(t *testing.T) {
	root := fakeProc(t, map[string][2]string{
		"1":   {"systemd", "/sbin/init\x00splash\x00"},
		"42":  {"haproxy", "/usr/sbin/haproxy\x00-f\x00x\x00"},
		"77":  {"python3", "/usr/local/bin/long-named-daemon\x00"},
		"999": {"kworker/0:1", ""},
	})
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"haproxy", true}, {"long-named-daemon", true}, {"init", true}, {"nginx", false}, {"", false},
	} {
		r := Process{Name: tc.name, ProcRoot: root}.Check(context.Background())
		if r.OK != tc.ok {
			t.Errorf("%q: ok=%v (%s), want %v", tc.name, r.OK, r.Reason, tc.ok)
		}
	}
	// The real /proc has this test binary.
	self, _ := os.Readlink("/proc/self/exe")
	if r := (Process{Name: filepath.Base(self)}).Check(context.Background()); !r.OK {
		t.Fatalf("own process not found: %s", r.Reason)
	}
}

func TestInterface(t *testing.T) {
	if r := (Interface{Name: "lo"}).Check(context.Background()); !r.OK {
		t.Fatalf("lo: %s", r.Reason)
	}
	if r := (Interface{Name: "nonexistent0"}).Check(context.Background()); r.OK || !strings.Contains(r.Reason, "nonexistent0") {
		t.Fatalf("missing interface: %+v", r)
	}
}

type fakeProxy struct {
	ok  bool
	got []string
}

func (f *fakeProxy) LocalHealthy(fe []string) (bool, string) {
	f.got = fe
	if f.ok {
		return true, ""
	}
	return false, "backend web has no server up"
}

func TestFactory(t *testing.T) {
	reg := health.NewRegistry()
	builtin.Register(reg)
	px := &fakeProxy{}
	f := Factory(Options{Checks: reg, Proxy: px})
	ctx := context.Background()
	tests := []struct {
		name    string
		tr      config.VRRPTrack
		ok      bool
		wantErr string
	}{
		{"exec true", config.VRRPTrack{Kind: "exec", Command: []string{"true"}, Timeout: config.Duration(1e9)}, true, ""},
		{"exec false", config.VRRPTrack{Kind: "exec", Command: []string{"false"}, Timeout: config.Duration(1e9)}, false, ""},
		{"exec timeout", config.VRRPTrack{Kind: "exec", Command: []string{"sleep", "5"}}, false, ""},
		{"exec keepalived-style args untouched", config.VRRPTrack{Kind: "exec", Command: []string{"sh", "-c", "test $# -eq 0"}}, true, ""},
		{"proxy down", config.VRRPTrack{Kind: "proxy", Frontends: []string{"web"}}, false, ""},
		{"interface lo", config.VRRPTrack{Kind: "interface", Interface: "lo"}, true, ""},
		{"lua not registered", config.VRRPTrack{Kind: "lua", Script: "p.f"}, false, `check kind "lua" is not available`},
		{"bogus", config.VRRPTrack{Kind: "bogus"}, false, "unknown track kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := f(&tc.tr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			if r := src.Check(cctx); r.OK != tc.ok {
				t.Fatalf("ok=%v (%s), want %v", r.OK, r.Reason, tc.ok)
			}
		})
	}
	if len(px.got) != 1 || px.got[0] != "web" {
		t.Fatalf("proxy asked for %v", px.got)
	}
	if _, err := Factory(Options{})(&config.VRRPTrack{Kind: "proxy"}); err == nil {
		t.Fatal("proxy kind without a proxy built")
	}
}

func BenchmarkProcess(b *testing.B) {
	p := Process{Name: "no-such-process-xyz"}
	for b.Loop() {
		p.Check(context.Background())
	}
}

func TestFactoryHTTP(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.URL.RawQuery != "deep=1" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	reg := health.NewRegistry()
	builtin.Register(reg)
	src, err := Factory(Options{Checks: reg})(&config.VRRPTrack{Kind: "http", URL: srv.URL + "/health?deep=1", Timeout: config.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if r := src.Check(ctx); !r.OK {
		t.Fatalf("healthy URL: %s", r.Reason)
	}
	status = http.StatusServiceUnavailable
	if r := src.Check(ctx); r.OK || !strings.Contains(r.Reason, "503") {
		t.Fatalf("503 URL: %+v", r)
	}
}

// TestFile: keepalived's track_file — the number in the file times the
// weight is the priority delta (FAULT below -253); with weight 0 a
// non-zero number is a failure; a missing file is 0; a file that holds no
// number is FAULT (a delta below -253) whatever the weight.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string // content "-" = no file
		weight        int
		ok, hasDelta  bool
		delta         int
		reason        string
	}{
		{"missing weight 0", "-", 0, true, false, 0, ""},
		{"zero weight 0", "0\n", 0, true, false, 0, ""},
		{"non-zero weight 0 fails", "1\n", 0, false, false, 0, "holds 1"},
		{"negative weight 0 fails", "-5", 0, false, false, 0, "holds -5"},
		{"missing weighted", "-", 10, true, true, 0, ""},
		{"value times weight", " 5 \n", 10, true, true, 50, ""},
		{"negative value", "-100\n", 1, true, true, -100, ""},
		{"negative weight", "3", -20, true, true, -60, ""},
		{"below -253 fails", "-254", 1, false, true, -254, "below -253"},
		{"huge value is bounded", "2000000000", 254, true, true, 1 << 20, ""},
		{"not a number weight 0", "maint\n", 0, false, true, -254, `holds "maint", not a number`},
		{"not a number weighted", "1.5", 10, false, true, -254, "not a number"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("f%d", i))
			if tc.content != "-" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src, err := Factory(Options{})(&config.VRRPTrack{Kind: "file", File: path, Weight: tc.weight})
			if err != nil {
				t.Fatal(err)
			}
			r := src.Check(context.Background())
			if r.OK != tc.ok || r.HasDelta != tc.hasDelta || r.PriorityDelta != tc.delta || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("got ok=%v delta=%v/%d reason %q, want ok=%v delta=%v/%d reason containing %q",
					r.OK, r.HasDelta, r.PriorityDelta, r.Reason, tc.ok, tc.hasDelta, tc.delta, tc.reason)
			}
		})
	}
	// A directory cannot be read: FAULT.
	if r := (File{Path: dir, Weight: 1}).Check(context.Background()); r.OK || r.PriorityDelta >= -253 {
		t.Fatalf("unreadable file: %+v", r)
	}
}

package importer

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// nodeLogHint is the `log:` block the import wrote in its footer, as a node
// file reads it.
func nodeLogHint(t *testing.T, r *Result) (config.NodeLog, string) {
	t.Helper()
	y := string(r.YAML)
	i := strings.Index(y, "#   log:\n")
	if i < 0 {
		return config.NodeLog{}, ""
	}
	var b strings.Builder
	b.WriteString("name: n1\ndatacenter: dc1\n")
	for _, l := range strings.Split(y[i:], "\n") {
		if !strings.HasPrefix(l, "#   ") {
			break
		}
		b.WriteString(strings.TrimPrefix(l, "#   ") + "\n")
	}
	n, err := config.ParseNode("node.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("the hint is not a valid node file:\n%s\n%v", b.String(), err)
	}
	return n.Log, b.String()
}

func TestImportLogLines(t *testing.T) {
	tests := []struct {
		name           string
		cfg            string
		targets        []string // address facility level tag format max_length, one string each
		access         []string
		warnings       []string
		skippedPattern string
		feTargets      map[string][]string // frontend: its log_targets
	}{
		{"global lines and log global", `
global
    log /dev/log local0
    log /dev/log local1 notice
    log 10.0.0.9:5140 len 4096 format rfc5424 local2 warning
defaults
    mode http
    log global
frontend fe
    bind :80
    default_backend be
backend be
    server s1 10.0.0.1:80
`, []string{"/dev/log local0  haproxy rfc3164 8192", "/dev/log local1 info haproxy rfc3164 8192", "udp://10.0.0.9:5140 local2 warn haproxy rfc5424 4096"}, nil, nil, "", nil},
		{"per-proxy lines become log.access", `
global
    log 127.0.0.1 local0
    log-tag edge
frontend web
    bind :80
    log 127.0.0.1:1514 local3 info
    log stdout format raw daemon
    default_backend be
frontend other
    bind :81
    log global
    default_backend be
backend be
    log 10.9.9.9 local5
    server s1 10.0.0.1:80
`, []string{"udp://127.0.0.1:514 local0  edge rfc3164 8192"},
			[]string{"stdout daemon  vipgate rfc3164 8192", "udp://127.0.0.1:514 local0  edge rfc3164 8192"},
			[]string{`h.cfg:15: log: a backend's log lines`}, "",
			map[string][]string{"web": {"udp://127.0.0.1:1514 local3 info edge rfc3164 8192"}, "other": nil}},
		{"no global lines: log global logs nothing", `
defaults
    log global
frontend fe
    bind :80
    default_backend be
backend be
    server s1 10.0.0.1:80
`, nil, nil, nil, `h\.cfg:3: log global \(no global log line`, nil},
		{"unsupported", `
global
    log ring@buf local0
    log 127.0.0.1 local9
    log 127.0.0.1 sample 1:2 local0 info notice
frontend fe
    bind :80
    default_backend be
backend be
    server s1 10.0.0.1:80
`, []string{"udp://127.0.0.1:514 local0 info haproxy rfc3164 8192"}, nil, []string{
			`h.cfg:3: log: log target "ring@buf" has no vipgate equivalent`,
			`h.cfg:4: log: facility "local9": unknown`,
			`h.cfg:5: log: sample: vipgate sends every line`,
			`h.cfg:5: log: a minimum level`,
		}, "", nil},
	}
	show := func(ts []config.LogTarget) []string {
		var out []string
		for _, t := range ts {
			out = append(out, strings.Join([]string{t.Address, t.Facility, t.Level, t.Tag, t.Format, itoa(t.MaxLength)}, " "))
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := importHA(t, tc.cfg)
			wantWarnings(t, r, tc.warnings, false)
			nl, hint := nodeLogHint(t, r)
			if got := show(nl.Targets); strings.Join(got, "|") != strings.Join(tc.targets, "|") {
				t.Errorf("targets:\n%s\nwant:\n%s\nhint:\n%s", strings.Join(got, "\n"), strings.Join(tc.targets, "\n"), hint)
			}
			if got := show(nl.Access); strings.Join(got, "|") != strings.Join(tc.access, "|") {
				t.Errorf("access:\n%s\nwant:\n%s\nhint:\n%s", strings.Join(got, "\n"), strings.Join(tc.access, "\n"), hint)
			}
			for fe, want := range tc.feTargets {
				f := r.Cluster.Frontend(fe)
				if f == nil {
					t.Fatalf("no frontend %s", fe)
				}
				if got := show(f.LogTargets); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("frontend %s log_targets %v, want %v", fe, got, want)
				}
			}
			if tc.skippedPattern != "" {
				rx := regexp.MustCompile(tc.skippedPattern)
				found := false
				for _, s := range r.Skipped {
					found = found || rx.MatchString(s)
				}
				if !found {
					t.Errorf("skipped %v: want %s", r.Skipped, tc.skippedPattern)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

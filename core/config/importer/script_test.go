package importer

import (
	"reflect"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

func TestClassifyScript(t *testing.T) {
	fs := mapFS{
		"/etc/keepalived/haproxy_check.sh": "#!/bin/bash\ncount=`ps -C haproxy --no-header | wc -l`\nif [ $count -gt 0 ];then\n  exit 0\nfi\n",
		"conf/other.sh":                    "#!/bin/sh\nexec /usr/local/bin/probe --deep\n",
	}
	tests := []struct {
		script string
		want   config.VRRPTrack
		warn   string
	}{
		{"killall -0 haproxy", config.VRRPTrack{Kind: "proxy"}, ""},
		{"/usr/bin/pidof haproxy", config.VRRPTrack{Kind: "proxy"}, ""},
		{"pgrep -x haproxy", config.VRRPTrack{Kind: "proxy"}, ""},
		{"ps -C haproxy --no-header", config.VRRPTrack{Kind: "proxy"}, ""},
		{"systemctl is-active --quiet haproxy.service", config.VRRPTrack{Kind: "proxy"}, ""},
		{"/usr/bin/killall -0 haproxy && /usr/bin/curl -k 'https://localhost/ews/healthcheck.htm'", config.VRRPTrack{Kind: "proxy"}, ""},
		{"/etc/keepalived/haproxy_check.sh", config.VRRPTrack{Kind: "proxy"}, ""},
		{"killall -0 haporxy", config.VRRPTrack{Kind: "proxy"}, `"haporxy" looks like a typo of "haproxy"`},
		{"pidof nginx", config.VRRPTrack{Kind: "process", Process: "nginx"}, "checks that nginx runs, which vipgate does not replace"},
		{"pidof ngxin", config.VRRPTrack{Kind: "process", Process: "nginx"}, `"ngxin" looks like a typo of "nginx"`},
		{"pidof mysqld", config.VRRPTrack{Kind: "process", Process: "mysqld"}, "keepalived runs pidof's file, /sbin/killall5"},
		{"pgrep mysqld", config.VRRPTrack{Kind: "process", Process: "mysqld"}, ""},
		{"/usr/local/bin/check --port '4 43'", config.VRRPTrack{Kind: "exec", Command: []string{"/usr/local/bin/check", "--port", "4 43"}}, ""},
		{"/etc/keepalived/other.sh", config.VRRPTrack{Kind: "exec", Command: []string{"/etc/keepalived/other.sh"}}, ""},
		{"killall -0 haproxy && /usr/local/bin/deep-check", config.VRRPTrack{Kind: "exec", Command: []string{"/bin/sh", "-c", "killall -0 haproxy && /usr/local/bin/deep-check"}}, "shell syntax: runs through /bin/sh -c"},
		{"curl -s http://198.18.0.9/ | grep -q ok", config.VRRPTrack{Kind: "exec", Command: []string{"/bin/sh", "-c", "curl -s http://198.18.0.9/ | grep -q ok"}}, "it ran \"curl\" with the rest of the line"},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			tr := &translator{fs: fs}
			tr.c.Frontends = []config.Frontend{{Name: "f"}}
			s := &kaScript{node: &kanode{file: "conf/keepalived.conf", line: 3}, scriptLine: &kanode{file: "conf/keepalived.conf", line: 4}, name: "chk", script: tt.script}
			var got config.VRRPTrack
			tr.kaScriptTrack(s, &got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("track = %+v, want %+v", got, tt.want)
			}
			r := &Result{Warnings: tr.warnings}
			var want []string
			if tt.warn != "" {
				want = []string{"conf/keepalived.conf:4: vrrp_script chk", tt.warn}
				if len(tr.warnings) == 0 {
					t.Errorf("warnings: %v", tr.warnings)
				}
			}
			wantWarnings(t, r, want, tt.warn == "")
		})
	}
}

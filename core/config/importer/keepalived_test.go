package importer

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

func importKA(t *testing.T, files ...string) *Result {
	t.Helper()
	var in []*Input
	for i, f := range files {
		in = append(in, &Input{Name: []string{"k1.conf", "k2.conf", "k3.conf"}[i], Data: []byte(f)})
	}
	r, err := Import(Options{Keepalived: in, FS: mapFS{}})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return r
}

const kaInst = `vrrp_instance VI {
  interface eth1
  virtual_router_id 42
  priority 150
  virtual_ipaddress {
    198.18.5.10/24
  }
}
`

func TestKeepalivedTranslation(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		check func(t *testing.T, c *config.Cluster)
		warns []string
	}{
		{
			name: "full instance",
			files: []string{`global_defs {
  router_id gw1
  vrrp_garp_master_delay 2
  vrrp_garp_master_refresh 30
}
vrrp_script chk_web {
  script "/usr/local/bin/check-web --port 443"
  interval 3
  timeout 2
  weight -30
  rise 3
  fall 2
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 7
  priority 90
  advert_int 2
  nopreempt
  authentication {
    auth_type PASS
    auth_pass secret
  }
  unicast_src_ip 198.18.0.2
  unicast_peer {
    198.18.0.3
    198.18.0.4
  }
  virtual_ipaddress {
    198.18.0.10/24 dev eth0 label eth0:1
    198.18.0.11
  }
  track_script {
    chk_web weight -50
  }
  track_interface {
    eth1 weight -10
  }
  notify_master "/bin/n master"
  notify "/bin/n all"
  accept
}
`},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				f, tr := false, true
				want := config.VRRPInstance{
					Name: "VI_1", Interface: "eth0", VRID: 7, Version: 2, Nodes: config.StringList{"gw1"},
					Priority: 100, Priorities: map[string]int{"gw1": 90}, AdvertInterval: d("2s"), Preempt: &f,
					AuthPass: "secret", UnicastPeers: config.StringList{"198.18.0.2", "198.18.0.3", "198.18.0.4"},
					VIPs: config.StringList{"198.18.0.10/24 dev eth0 label eth0:1", "198.18.0.11"},
					Track: []config.VRRPTrack{
						{Kind: "exec", Name: "chk_web", Interval: d("3s"), Timeout: d("2s"), Rise: 3, Fall: 2, Weight: -50, Command: []string{"/usr/local/bin/check-web", "--port", "443"}},
						{Kind: "interface", Name: "interface-eth1", Interface: "eth1", Weight: -10, Interval: d("1s"), Timeout: d("1s"), Rise: 1, Fall: 1},
					},
					NotifyMaster: "/bin/n master", Notify: "/bin/n all", AcceptMode: &tr,
					GARPMasterRepeat: 5, GARPMasterRefresh: d("30s"),
				}
				gd := d("2s")
				want.GARPMasterDelay = &gd
				if !reflect.DeepEqual(in, want) {
					t.Errorf("instance:\n got %+v\nwant %+v", in, want)
				}
			},
			warns: []string{"k1.conf:14: vrrp_instance VI_1: this file describes one node (gw1, priority 90)"},
		},
		{
			name: "haproxy liveness script without haproxy.cfg becomes a process track",
			files: []string{"vrrp_script chk { \n script \"killall -0 haproxy\"\n}\n" + `vrrp_instance VI { interface eth0
virtual_router_id 1
virtual_ipaddress {
198.18.0.1
}
track_script {
chk
}
}`, "vrrp_instance VI { interface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				// Without a haproxy.cfg there is no vipgate proxy to track:
				// the HAProxy process that keeps running is.
				if len(in.Track) != 1 || in.Track[0].Kind != "process" || in.Track[0].Process != "haproxy" {
					t.Errorf("track = %+v", in.Track)
				}
				if !reflect.DeepEqual(in.Priorities, map[string]int{"k1": 100, "k2": 100}) || !reflect.DeepEqual([]string(in.Nodes), []string{"k1", "k2"}) {
					t.Errorf("priorities %v nodes %v", in.Priorities, in.Nodes)
				}
			},
		},
		{
			// keepalived 2.2 vrrp.c, vrrp_complete_instance: under
			// vrrp_strict authentication is ignored ("Strict mode does not
			// support authentication. Ignoring."), accept mode is off
			// unless priority 255, preempt_delay is reset, state MASTER of
			// a non-owner starts as BACKUP (so nopreempt stays), and a
			// unicast instance is refused. global_defs after the instance
			// counts too; strict_mode off on the instance wins.
			name: "vrrp_strict as keepalived 2.2 runs it",
			files: []string{`vrrp_instance VI {
  state MASTER
  nopreempt
  preempt_delay 5
  interface eth0
  virtual_router_id 1
  priority 150
  accept
  authentication {
    auth_type PASS
    auth_pass superpassword
  }
  unicast_peer {
    198.18.0.3
  }
  virtual_ipaddress {
    198.18.0.1
  }
}
vrrp_instance OFF {
  strict_mode off
  interface eth0
  virtual_router_id 2
  authentication {
    auth_pass pw
  }
  virtual_ipaddress {
    198.18.0.2
  }
}
global_defs {
  router_id gw1
  vrrp_strict
}
`, "global_defs {\n router_id gw2\n vrrp_strict\n}\n" + `vrrp_instance VI {
  interface eth0
  virtual_router_id 1
  priority 100
  authentication {
    auth_pass superpassword
  }
  virtual_ipaddress {
    198.18.0.1
  }
}
`},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				if in.AuthPass != "" || in.AcceptMode != nil || in.PreemptDelay != 0 || in.PreemptOn() {
					t.Errorf("strict instance: auth %q accept %v preempt_delay %s preempt %v", in.AuthPass, in.AcceptMode, in.PreemptDelay.D(), in.PreemptOn())
				}
				if off := c.VRRP.Instances[1]; off.AuthPass != "pw" {
					t.Errorf("strict_mode off: auth_pass %q, want pw", off.AuthPass)
				}
			},
			warns: []string{
				"k1.conf:2: state MASTER: vrrp_strict: keepalived starts a non-owner",
				"k1.conf:8: no_accept: vrrp_strict",
				"k1.conf:9: authentication: vrrp_strict: keepalived ignores authentication",
				"k1.conf:13: unicast_peer: vrrp_strict: keepalived refuses a unicast instance",
				"k1.conf:4: preempt_delay: vrrp_strict: keepalived resets it",
				"k2.conf:3: no_accept: vrrp_strict",
				"k2.conf:9: authentication: vrrp_strict",
				"k2.conf:5: vrrp_instance VI: nodes differ on nopreempt",
			},
		},
		{
			// seed004: each node its own NIC (and the VIP dev, unicast
			// source with it); smtp_server written host:port.
			name: "per-node interface, source and VIP dev",
			files: []string{"global_defs {\n router_id n1\n notification_email {\n ops@example.com\n }\n notification_email_from ka@example.com\n smtp_server smtp.example.com:2525\n}\n" + `vrrp_instance VI {
  interface ens160
  virtual_router_id 9
  priority 101
  smtp_alert
  unicast_src_ip 198.18.0.1
  unicast_peer {
    198.18.0.2
  }
  virtual_ipaddress {
    198.18.0.100/24 dev ens160
  }
}
`, "global_defs {\n router_id n2\n}\n" + `vrrp_instance VI {
  interface ens192
  virtual_router_id 9
  priority 100
  unicast_src_ip 198.18.0.2
  unicast_peer {
    198.18.0.1
  }
  virtual_ipaddress {
    198.18.0.100/24 dev ens192
  }
}
`},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				if in.Interface != "ens160" || !reflect.DeepEqual(in.Interfaces, map[string]string{"n2": "ens192"}) ||
					!reflect.DeepEqual(in.VIPDevs, map[string]string{"n2": "ens192"}) ||
					!reflect.DeepEqual(in.UnicastSrcIPs, map[string]string{"n1": "198.18.0.1", "n2": "198.18.0.2"}) {
					t.Errorf("per-node values: interface %s interfaces %v vip_devs %v unicast_src_ips %v", in.Interface, in.Interfaces, in.VIPDevs, in.UnicastSrcIPs)
				}
				if n2 := in.ForNode("n2"); n2.Interface != "ens192" || n2.VIPs[0] != "198.18.0.100/24 dev ens192" || n2.UnicastSrcIP != "198.18.0.2" {
					t.Errorf("n2 runs %+v", n2)
				}
				if len(c.Alerts.Mailers) != 1 || c.Alerts.Mailers[0].Address != "smtp.example.com:2525" {
					t.Errorf("mailers %+v", c.Alerts.Mailers)
				}
			},
		},
		{
			name: "track processes",
			files: []string{`vrrp_track_process haproxy {
  process haproxy
  weight -40
  quorum 1
  delay 2
}
vrrp_track_process nginx {
  process nginx -g "daemon off;"
  quorum 2
}
vrrp_track_process none {
  weight 3
}
vrrp_instance VI { interface eth0
virtual_router_id 1
virtual_ipaddress {
198.18.0.1
}
track_process {
haproxy
nginx weight -20 reverse
nosuch
}
}
`, "vrrp_instance VI { interface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				one := d("1s")
				want := []config.VRRPTrack{
					{Kind: "process", Name: "process-haproxy", Process: "haproxy", Weight: -40, Interval: one, Timeout: one, Rise: 1, Fall: 1},
					{Kind: "process", Name: "process-nginx", Process: "nginx", Weight: -20, Interval: one, Timeout: one, Rise: 1, Fall: 1},
				}
				if got := c.VRRP.Instances[0].Track; !reflect.DeepEqual(got, want) {
					t.Errorf("tracks:\n got %+v\nwant %+v", got, want)
				}
			},
			warns: []string{
				"k1.conf:5: delay: not supported; rise and fall",
				"k1.conf:8: process: parameters are not supported",
				"k1.conf:9: quorum: not supported",
				"k1.conf:11: vrrp_track_process none: no process; skipped",
				"k1.conf:21: track_process nginx weight reverse: not supported",
				"k1.conf:22: track_process nosuch: no vrrp_track_process of that name",
			},
		},
		{
			name: "track files",
			files: []string{`track_file maint {
  file "/var/run/vipgate/maint"
  weight -10 reverse
  init_file
}
vrrp_track_file fault {
  file /etc/keepalived/fault
  weight 0
  init_file 0 overwrite
}
track_file nofile {
  weight 3
}
vrrp_instance VI { interface eth0
virtual_router_id 1
virtual_ipaddress {
198.18.0.1
}
track_file {
maint
fault weight 5 reverse
nosuch
}
track_script {
chk weight 5 reverse
}
}
vrrp_script chk {
script "/bin/true"
}
`, "vrrp_instance VI { interface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				var files []config.VRRPTrack
				for _, tr := range c.VRRP.Instances[0].Track {
					if tr.Kind == "file" {
						files = append(files, tr)
					}
				}
				one := d("1s")
				want := []config.VRRPTrack{
					{Kind: "file", Name: "file-maint", File: "/var/run/vipgate/maint", Weight: 10, Interval: one, Timeout: one, Rise: 1, Fall: 1},
					{Kind: "file", Name: "file-fault", File: "/etc/keepalived/fault", Weight: -5, Interval: one, Timeout: one, Rise: 1, Fall: 1},
				}
				if !reflect.DeepEqual(files, want) {
					t.Errorf("file tracks:\n got %+v\nwant %+v", files, want)
				}
			},
			warns: []string{
				"k1.conf:9: init_file: not supported",
				"k1.conf:11: track_file nofile: no absolute file path; skipped",
				"k1.conf:22: track_file nosuch: no track_file of that name",
				"k1.conf:25: track_script chk weight reverse: not supported",
			},
		},
		{
			name: "two nodes merge",
			files: []string{"global_defs {\n router_id a\n}\n" + kaInst,
				"global_defs {\n router_id b\n}\n" + `vrrp_instance VI {
  interface eth1
  virtual_router_id 43
  priority 100
  virtual_ipaddress {
    198.18.5.10/24
  }
}`},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				if in.VRID != 42 || !reflect.DeepEqual(in.Priorities, map[string]int{"a": 150, "b": 100}) {
					t.Errorf("instance = %+v", in)
				}
			},
			warns: []string{"k2.conf:4: vrrp_instance VI: differs from k1.conf:4"},
		},
		{
			name:  "nopreempt drops preempt_delay",
			files: []string{"vrrp_instance VI {\n interface e\n virtual_router_id 1\n nopreempt\n preempt_delay 10\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n", kaInstNamed("VI")},
			check: func(t *testing.T, c *config.Cluster) {
				if in := c.VRRP.Instances[0]; in.PreemptDelay != 0 || in.PreemptOn() {
					t.Errorf("instance = %+v", in)
				}
			},
			warns: []string{"k1.conf:1: preempt_delay: has no effect with nopreempt", "k2.conf:1: vrrp_instance VI: differs",
				"k2.conf:1: vrrp_instance VI: nodes differ on nopreempt"},
		},
		{
			// keepalived: "nopreempt will not work with initial state MASTER - clearing".
			name: "nopreempt with state MASTER is cleared, as keepalived does",
			files: []string{"global_defs {\n router_id a\n}\nvrrp_instance VI {\n state MASTER\n interface e\n virtual_router_id 1\n priority 150\n nopreempt\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n",
				"global_defs {\n router_id b\n}\nvrrp_instance VI {\n state BACKUP\n interface e\n virtual_router_id 1\n priority 100\n nopreempt\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				if in := c.VRRP.Instances[0]; !in.PreemptOn() {
					t.Errorf("instance = %+v, want preempt (a's nopreempt is cleared, a has the highest priority)", in)
				}
			},
			warns: []string{"k1.conf:9: nopreempt: keepalived ignores nopreempt with state MASTER",
				"k2.conf:4: vrrp_instance VI: nodes differ on nopreempt; vipgate sets it per instance: a's (the highest priority) is used"},
		},
		{
			name: "nopreempt of the highest priority node is kept",
			files: []string{"global_defs {\n router_id a\n}\nvrrp_instance VI {\n state BACKUP\n interface e\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n",
				"global_defs {\n router_id b\n}\nvrrp_instance VI {\n state BACKUP\n interface e\n virtual_router_id 1\n priority 150\n nopreempt\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				if in := c.VRRP.Instances[0]; in.PreemptOn() {
					t.Errorf("instance = %+v, want preempt: false (b has the highest priority)", in)
				}
			},
			warns: []string{"k1.conf:4: vrrp_instance VI: nodes differ on nopreempt; vipgate sets it per instance: b's (the highest priority) is used"},
		},
		{
			name:  "long auth_pass is cut to 8",
			files: []string{"vrrp_instance VI {\n interface e\n virtual_router_id 1\n authentication {\n auth_type PASS\n auth_pass 0123456789\n }\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n", kaInstNamed("VI")},
			check: func(t *testing.T, c *config.Cluster) {
				if in := c.VRRP.Instances[0]; in.AuthPass != "01234567" {
					t.Errorf("auth_pass = %q", in.AuthPass)
				}
			},
			warns: []string{"k1.conf:6: auth_pass: longer than 8", "k2.conf:1: vrrp_instance VI: differs"},
		},
		{
			name:  "sub-second adverts",
			files: []string{"global_defs {\n vrrp_version 3\n}\nvrrp_instance A {\n interface e\n virtual_router_id 1\n advert_int 0.5\n virtual_ipaddress {\n 198.18.0.1\n }\n}\nvrrp_instance B {\n interface e\n virtual_router_id 2\n version 2\n advert_int 0.5\n virtual_ipaddress {\n 198.18.0.2\n }\n}\n", kaInstNamed("A") + kaInstNamed("B")},
			check: func(t *testing.T, c *config.Cluster) {
				a, b := c.VRRP.Instances[0], c.VRRP.Instances[1]
				if a.Version != 3 || a.AdvertInterval != d("500ms") || b.Version != 2 || b.AdvertInterval != d("1s") {
					t.Errorf("a %d %v, b %d %v", a.Version, a.AdvertInterval, b.Version, b.AdvertInterval)
				}
			},
			warns: []string{"k1.conf:12: advert_int: VRRPv2 adverts are whole seconds", "vrrp_instance A: differs", "vrrp_instance B: differs"},
		},
		{
			name:  "IPv6 only instance is VRRPv3",
			files: []string{"vrrp_instance V6 {\n interface e\n virtual_router_id 9\n virtual_ipaddress {\n 2001:db8::10/64\n }\n}\n", kaInstNamed("V6")},
			check: func(t *testing.T, c *config.Cluster) {
				in := c.VRRP.Instances[0]
				if in.Name != "V6" || in.Version != 3 || in.VIPs[0] != "2001:db8::10/64" {
					t.Errorf("instance = %+v", in)
				}
			},
			warns: []string{"vrrp_instance V6: differs"},
		},
		{
			name: "sync group and alerts",
			files: []string{"global_defs {\n notification_email {\n ops@example.com\n }\n notification_email_from ka@example.com\n smtp_server 198.18.0.25 587\n smtp_connect_timeout 15\n}\n" +
				kaInstNamed("A") + kaInstNamed("B") + "vrrp_sync_group G {\n group {\n A\n B\n }\n smtp_alert\n notify_master \"/etc/ka/up.sh G\"\n notify /etc/ka/notify.sh\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				g := c.VRRP.SyncGroups
				if len(g) != 1 || g[0].Name != "G" || !reflect.DeepEqual([]string(g[0].Instances), []string{"A", "B"}) {
					t.Errorf("sync groups = %+v", g)
				}
				if len(g) == 1 && (g[0].NotifyMaster != "/etc/ka/up.sh G" || g[0].Notify != "/etc/ka/notify.sh" || g[0].NotifyBackup != "") {
					t.Errorf("sync group notify scripts = %+v", g[0])
				}
				a := c.Alerts
				if len(a.Mailers) != 1 || a.Mailers[0].Address != "198.18.0.25:587" || a.Mailers[0].ConnectTimeout != d("15s") || a.From != "ka@example.com" {
					t.Errorf("alerts = %+v", a)
				}
				if len(a.Rules) != 1 || a.Rules[0].Events[0] != "vrrp.transition" || a.Rules[0].To[0] != "ops@example.com" {
					t.Errorf("rules = %+v", a.Rules)
				}
			},
			warns: []string{"k1.conf:9: vrrp_instance A: this file describes one node", "k1.conf:16: vrrp_instance B: this file describes one node"},
		},
		{
			name: "nodes with different notification settings",
			files: []string{
				"global_defs {\n router_id gw1\n notification_email {\n ops@example.com\n }\n notification_email_from gw1@example.com\n smtp_server 198.18.0.25\n}\n" +
					"vrrp_instance VI {\n interface e\n virtual_router_id 1\n smtp_alert\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n",
				"global_defs {\n router_id gw2\n notification_email {\n ops@example.com noc@example.com\n }\n notification_email_from gw2@example.com\n smtp_server 198.19.0.25\n}\n" +
					"vrrp_instance VI {\n interface e\n virtual_router_id 1\n smtp_alert\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n"},
			check: func(t *testing.T, c *config.Cluster) {
				a := c.Alerts
				if len(a.Mailers) != 1 || a.Mailers[0].Address != "198.18.0.25:25" || a.From != "gw1@example.com" {
					t.Errorf("alerts = %+v", a)
				}
				if len(a.Rules) != 1 || !reflect.DeepEqual([]string(a.Rules[0].To), []string{"ops@example.com", "noc@example.com"}) {
					t.Errorf("rules = %+v, want every file's recipients", a.Rules)
				}
			},
			warns: []string{`k2.conf:6: notification_email_from: vipgate sends every alert from one address; keeping "gw1@example.com"`,
				"k2.conf:7: smtp_server: 198.19.0.25:25 differs from k1.conf's 198.18.0.25:25: vipgate mails through one relay list for the cluster",
				"k2.conf:3: notification_email: differs from k1.conf's: the rule mails the recipients of every file"},
		},
		{
			name: "dual-stack instance in a sync group",
			files: []string{"vrrp_instance A {\n interface eth0\n virtual_router_id 10\n virtual_ipaddress {\n 198.18.0.1/24\n 2001:db8::1/64\n }\n}\n" +
				kaInstNamed("B") + "vrrp_sync_group G {\n group {\n A\n B\n }\n}\n", kaInstNamed("A") + kaInstNamed("B")},
			check: func(t *testing.T, c *config.Cluster) {
				var names []string
				for _, in := range c.VRRP.Instances {
					names = append(names, fmt.Sprintf("%s/v%d/%s", in.Name, in.Version, in.VIPs[0]))
				}
				if want := []string{"A/v2/198.18.0.1/24", "A-v6/v3/2001:db8::1/64", "B/v2/198.18.9.9"}; !reflect.DeepEqual(names, want) {
					t.Errorf("instances = %v, want %v", names, want)
				}
				if g := c.VRRP.SyncGroups; len(g) != 1 || !reflect.DeepEqual([]string(g[0].Instances), []string{"A", "B", "A-v6"}) {
					t.Errorf("sync groups = %+v", g)
				}
			},
			warns: []string{"vrrp_instance A: differs"},
		},
		{
			name:  "schema refusals drop the instance at its line",
			files: []string{"vrrp_instance LONG {\n interface averyveryverylonginterfacename\n virtual_router_id 10\n virtual_ipaddress {\n 198.18.0.1/24\n }\n}\n", kaInstNamed("LONG")},
			check: func(t *testing.T, c *config.Cluster) {
				if len(c.VRRP.Instances) != 0 {
					t.Errorf("instances = %+v", c.VRRP.Instances)
				}
			},
			warns: []string{"vrrp_instance LONG: differs", `k1.conf:1: vrrp_instance LONG: dropped: interface "averyveryverylonginterfacename" is not a valid interface name`},
		},
		{
			name:  "broken pieces are positioned",
			files: []string{"global_defs {\n bogus_key 1\n}\nvrrp_instance X {\n interface e\n virtual_router_id 300\n}\nvrrp_instance Y {\n interface e\n virtual_router_id 3\n track_script {\n nope\n }\n virtual_ipaddress {\n 198.18.0.300/24\n 198.18.0.3/24 frob x\n }\n}\nvirtual_server 198.18.0.1 80 {\n}\n", kaInstNamed("Y")},
			check: func(t *testing.T, c *config.Cluster) {
				if len(c.VRRP.Instances) != 1 || c.VRRP.Instances[0].Name != "Y" || len(c.VRRP.Instances[0].Track) != 0 {
					t.Errorf("instances = %+v", c.VRRP.Instances)
				}
			},
			warns: []string{"k1.conf:2: bogus_key: unknown", "k1.conf:6: virtual_router_id: want 1-255", "k1.conf:4: vrrp_instance X: no virtual_router_id; skipped",
				"k1.conf:12: track_script nope: no vrrp_script", `k1.conf:15: virtual_ipaddress: "198.18.0.300/24" is not`, "k1.conf:16: virtual_ipaddress frob: option not supported",
				"k1.conf:19: virtual_server 198.18.0.1 80: no real_server", "vrrp_instance Y: differs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := importKA(t, tt.files...)
			tt.check(t, r.Cluster)
			wantWarnings(t, r, tt.warns, true)
		})
	}
}

// kaInstNamed is a second node's minimal instance: merging it keeps the
// "describes one node" warning out of tests about other things.
// use_vmac is carried over while the schema accepts it, and left out of
// the instance (not the instance left out) with a warning when it does not.
func TestKeepalivedUseVMAC(t *testing.T) {
	r := importKA(t, "vrrp_instance V {\n interface eth0\n virtual_router_id 3\n use_vmac\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n", kaInstNamed("V"))
	if len(r.Cluster.VRRP.Instances) != 1 {
		t.Fatalf("instances = %+v", r.Cluster.VRRP.Instances)
	}
	if r.Cluster.VRRP.Instances[0].UseVMAC {
		wantWarnings(t, r, []string{"vrrp_instance V: differs"}, true)
	} else {
		wantWarnings(t, r, []string{"vrrp_instance V: differs", "k1.conf:1: vrrp_instance V use_vmac: dropped: use_vmac"}, true)
	}
}

func kaInstNamed(name string) string {
	return "vrrp_instance " + name + " {\n interface e\n virtual_router_id " + fmt.Sprint(200+len(name)+int(name[0])%50) + "\n virtual_ipaddress {\n 198.18.9.9\n }\n}\n"
}

// no_accept asks for filtering vipgate does not do: the setting is left out
// with a warning that says why, and the instance stays.
func TestKeepalivedNoAccept(t *testing.T) {
	r := importKA(t, "vrrp_instance V {\n interface eth0\n virtual_router_id 3\n no_accept\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n", kaInstNamed("V"))
	if len(r.Cluster.VRRP.Instances) != 1 || r.Cluster.VRRP.Instances[0].AcceptMode != nil {
		t.Fatalf("instances = %+v", r.Cluster.VRRP.Instances)
	}
	wantWarnings(t, r, []string{"vrrp_instance V: differs", "k1.conf:1: vrrp_instance V accept_mode: dropped: accept_mode: false is not supported"}, true)
}

package vrrp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config/importer"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestKeepalivedStrictImport is step one of a rolling migration of seed000
// (a pair with vrrp_strict and an authentication block): one node runs
// vipgate from `vipgate import` of both keepalived.conf files, the other
// still runs Debian's keepalived with its own file. keepalived ignores
// authentication under vrrp_strict, so the import must not keep auth_pass,
// or each side drops the other's adverts and both hold the VIP.
// The files are adapted only in NIC, address and track script path.
func TestKeepalivedStrictImport(t *testing.T) {
	testenv.RequireTool(t, "keepalived")
	seed := filepath.Join(testenv.MigrationInputs(t), "seed000-lab")
	dir := t.TempDir()
	check := filepath.Join(dir, "haproxy_check.sh")
	if err := os.WriteFile(check, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	adapt := func(name string) importer.Input {
		data, err := os.ReadFile(filepath.Join(seed, name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("ens160", "eth0", "10.1.1.254", vip, "/etc/keepalived/haproxy_check.sh", check).Replace(string(data))
		return importer.Input{Name: name, Data: []byte(s)}
	}
	files := map[string]importer.Input{"HA-01": adapt("keepalived-lb01.conf"), "HA-02": adapt("keepalived-lb02.conf")}
	in1, in2 := files["HA-01"], files["HA-02"]
	res, err := importer.Import(importer.Options{Keepalived: []*importer.Input{&in1, &in2}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.YAML), "auth_pass") {
		t.Fatalf("auth_pass kept under vrrp_strict:\n%s", res.YAML)
	}
	doc := string(res.YAML)

	for _, vipgateNode := range []string{"HA-01", "HA-02"} {
		t.Run("vipgate-is-"+vipgateNode, func(t *testing.T) {
			b := newBed(t, "v", "k") // v: vipgate 198.18.0.1, k: keepalived .2
			kaNode := "HA-01"
			if vipgateNode == "HA-01" {
				kaNode = "HA-02"
			}
			host := map[string]string{vipgateNode: "v", kaNode: "k"}
			start := map[string]func() *proc{
				vipgateNode: func() *proc { return startVipgate(t, b.hosts["v"], vipgateNode, doc) },
				kaNode:      func() *proc { return startKeepalived(t, b.hosts["k"], string(files[kaNode].Data)) },
			}
			procs := map[string]*proc{vipgateNode: start[vipgateNode](), kaNode: start[kaNode]()}
			logs := []*proc{procs["HA-01"], procs["HA-02"]}
			long := 20 * time.Second
			// HA-01 has priority 150, HA-02 100; both preempt.
			waitHolder(t, b.w, host["HA-01"], long)

			t.Log("HA-01 stops: HA-02 takes over")
			procs["HA-01"].stop()
			waitHolder(t, b.w, host["HA-02"], long)
			t.Log("HA-01 comes back and preempts")
			procs["HA-01"] = start["HA-01"]()
			logs = append(logs, procs["HA-01"])
			waitHolder(t, b.w, host["HA-01"], long)
			b.checkDual(t, opts{interval: time.Second})

			for _, p := range logs {
				out := p.out.String()
				if strings.HasPrefix(p.name, "keepalived") {
					if !strings.Contains(out, "Strict mode does not support authentication") {
						t.Errorf("keepalived did not run in strict mode with authentication ignored:\n%s", out)
					}
					if errs := strictProtocolErrors(out); len(errs) > 0 {
						t.Fatalf("keepalived complained about vipgate:\n%s", strings.Join(errs, "\n"))
					}
				} else if strings.Contains(out, "dropped advertisement") {
					t.Fatalf("vipgate dropped keepalived's adverts:\n%s", out)
				}
			}
		})
	}
}

// strictProtocolErrors is keepalivedProtocolErrors without what keepalived
// says about its own configuration under vrrp_strict and without script
// security, which are expected here, and without its config file's own
// complaints ("(Line 6) vrrp_garp_interval '0' is invalid": keepalived
// 2.2.7 refuses the 0 its own sample configuration writes).
func strictProtocolErrors(log string) []string {
	var out []string
	for _, l := range keepalivedProtocolErrors(log) {
		if strings.Contains(l, "Strict mode") || strings.Contains(l, "(Line ") || strings.Contains(l, "State MASTER must match") ||
			strings.Contains(l, "script_security") || strings.Contains(l, "keepalived_script") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestNetnsPerNodeInterface: one instance in one document, two nodes
// whose NICs are named differently (seed004: ens160 and ens192). Each
// node runs VRRP and puts the VIP on its own NIC (`interfaces:`).
func TestNetnsPerNodeInterface(t *testing.T) {
	b := newBed(t, "a", "b")
	hb := b.hosts["b"]
	hb.MustRun(t, "ip", "link", "set", "eth0", "down")
	hb.MustRun(t, "ip", "link", "set", "eth0", "name", "ens192")
	hb.MustRun(t, "ip", "link", "set", "ens192", "up")
	hb.Iface = "ens192"
	doc := `vrrp:
  instances:
    - name: VI_1
      nodes: [a, b]
      interface: eth0
      interfaces: {b: ens192}
      vrid: 51
      version: 3
      advert_interval: 100ms
      garp_master_delay: 1s
      priorities: {a: 200, b: 100}
      vips: ["` + vip + `/24"]
`
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, hb, "b", doc)
	long := 10 * time.Second
	waitHolder(t, b.w, "a", long)
	pa.stop()
	waitHolder(t, b.w, "b", long)
	if out := hb.MustRun(t, "ip", "-o", "addr", "show", "dev", "ens192"); !strings.Contains(out, vip+"/24") {
		t.Fatalf("VIP not on b's own NIC ens192:\n%s", out)
	}
	b.checkDual(t, opts{interval: 100 * time.Millisecond})
}

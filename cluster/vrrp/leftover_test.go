package vrrp

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// The soak found it: a gateway SIGKILLed while master keeps its VIP
// configured; restarted, it held it beside the new master for as long as
// raft took to give it the document back. Now the addresses are noted
// before an instance may take them, and a starting manager removes them
// at once, before any document.
func TestLeftoverVIPsRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	node := &config.Node{Name: "gw1", Datacenter: "dc1", Role: config.RoleGateway}
	seg := &fakeSeg{}
	quiet := slog.New(slog.NewTextHandler(ioDiscard{}, nil))
	var dropped []netip.Prefix
	opts := Options{Node: node, Log: quiet, StateDir: dir,
		Open: func(c *config.VRRPInstance, _ *slog.Logger) (NetIO, error) { return seg.port("198.18.0.1"), nil },
		DropAddr: func(p netip.Prefix) (bool, error) {
			dropped = append(dropped, p)
			return true, nil
		}}

	m := NewManager(opts)
	if len(dropped) != 0 {
		t.Fatalf("first start dropped %v with nothing noted", dropped)
	}
	a, b := instCfg("a", 100), instCfg("b", 100)
	b.VRID, b.VIPs = 52, config.StringList{"198.18.1.102/24", "198.18.1.103"}
	if err := m.Apply(&config.Cluster{VRRP: config.VRRP{Instances: []config.VRRPInstance{a, b}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "both instances master", func() bool {
		s := m.Status()
		return len(s) == 2 && s[0].State == Master && s[1].State == Master
	})
	data, err := os.ReadFile(filepath.Join(dir, leftoverFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(slices.Clone(a.VIPs), "198.18.1.102/24", "198.18.1.103/32") {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("noted list lacks %s:\n%s", want, data)
		}
	}
	// The process dies here without resigning (the test just drops m).
	cancel()
	<-done

	NewManager(opts) // the restart
	got := make([]string, len(dropped))
	for i, p := range dropped {
		got[i] = p.String()
	}
	want := instanceVIPs([]config.VRRPInstance{a, b})
	if len(got) != len(want) {
		t.Fatalf("dropped %v at restart, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i].String() {
			t.Errorf("dropped %v, want %v", got, want)
		}
	}
}

func TestReadNotedErrors(t *testing.T) {
	dir := t.TempDir()
	if l, err := readNoted(dir); err != nil || l != nil {
		t.Fatalf("no file: %v %v", l, err)
	}
	_ = os.WriteFile(filepath.Join(dir, leftoverFile), []byte("# comment\n198.18.1.100/24\nnot-an-address\n"), 0o600)
	l, err := readNoted(dir)
	if err == nil || !strings.Contains(err.Error(), leftoverFile+":3") || len(l) != 1 {
		t.Errorf("got %v, %v; want the first address and an error naming line 3", l, err)
	}
}

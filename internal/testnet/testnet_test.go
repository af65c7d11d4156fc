package testnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

func TestCheckTestAddr(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"198.18.0.1/24", true}, {"198.19.255.1", true}, {"10.0.0.1/8", false}, {"198.20.0.1/24", false}, {"x", false},
	} {
		if err := CheckTestAddr(tc.in); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestSegment(t *testing.T) {
	n := New(t)
	a := n.AddHost("a", "198.18.0.1/24")
	b := n.AddHost("b", "198.18.0.2/24")
	a.MustRun(t, "ping", "-c1", "-W2", "198.18.0.2")
	if !b.HasAddr("198.18.0.2") || b.HasAddr("198.18.0.1") {
		t.Fatal("HasAddr is wrong")
	}
	n.Cable(b, false)
	if out, err := a.Run("ping", "-c1", "-W1", "198.18.0.2"); err == nil {
		t.Fatalf("ping worked with the cable pulled:\n%s", out)
	}
	if out := b.MustRun(t, "ip", "link", "show", "eth0"); !strings.Contains(out, "NO-CARRIER") {
		t.Fatalf("no carrier loss seen:\n%s", out)
	}
}

// A router namespace attached to two segments forwards between them.
func TestAttachRouter(t *testing.T) {
	left, right := New(t), New(t)
	a := left.AddHost("a", "198.18.10.2/24")
	b := right.AddHost("b", "198.18.11.2/24")
	r := left.AddHost("r", "198.18.10.1/24")
	leg := right.Attach(r, "eth1", "198.18.11.1/24")
	r.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	a.MustRun(t, "ip", "route", "add", "default", "via", "198.18.10.1")
	b.MustRun(t, "ip", "route", "add", "default", "via", "198.18.11.1")
	a.MustRun(t, "ping", "-c1", "-W2", "198.18.11.2")
	if !leg.HasAddr("198.18.11.1") || leg.NS != r.NS {
		t.Fatal("the attached leg is not the router's eth1")
	}
	right.Cable(leg, false)
	if out, err := a.Run("ping", "-c1", "-W1", "198.18.11.2"); err == nil {
		t.Fatalf("ping worked with the router's leg pulled:\n%s", out)
	}
}

// A process a test leaves behind in a namespace (a daemon's forked child
// that nobody reaps) is killed with the namespace, not left running.
func TestLeftoverProcessKilled(t *testing.T) {
	var pid int
	t.Run("lab", func(t *testing.T) {
		h := New(t).AddHost("a", "198.18.0.1/24")
		out := h.MustRun(t, "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!")
		var err error
		if pid, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
			t.Fatalf("pid %q: %v", out, err)
		}
	})
	testenv.Eventually(t, 5*time.Second, "the leftover sleep gone with its namespace", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// Gone, or a zombie waiting for init to reap it.
		return err != nil || strings.Contains(string(b), ") Z ")
	})
}

package vrrp

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// A process that dies without resigning (SIGKILL, OOM kill, a crash)
// leaves its VIPs configured: the kernel keeps answering ARP for them
// beside the new master. An instance removes its VIPs when it starts, but
// it starts only once the node has the cluster document again, which
// after a restart takes as long as raft needs (seconds): that long, two
// gateways hold one VIP. So the manager notes in the data directory every
// address its instances may take, before any can take it, and a starting
// node removes the noted addresses first thing, before raft.

const leftoverFile = "vrrp-vips"

// instanceVIPs lists the addresses of the instances (sorted, unique).
func instanceVIPs(ins []config.VRRPInstance) []netip.Prefix {
	var out []netip.Prefix
	for _, in := range ins {
		for _, s := range in.VIPs {
			if v, err := config.ParseVIP(s); err == nil {
				out = append(out, v.Prefix)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// noteVIPs records the addresses (atomically: a crash leaves the old list
// or the new one). It is a no-op when nothing changed.
func (m *Manager) noteVIPs(vips []netip.Prefix) error {
	if m.o.StateDir == "" {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# addresses this node's VRRP instances may hold; removed at the next start (vipgate)\n")
	for _, p := range vips {
		fmt.Fprintln(&b, p)
	}
	if bytes.Equal(b.Bytes(), m.noted) {
		return nil
	}
	if err := os.MkdirAll(m.o.StateDir, 0o700); err != nil {
		return fmt.Errorf("vrrp: noting the VIPs: %w", err)
	}
	path := filepath.Join(m.o.StateDir, leftoverFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("vrrp: noting the VIPs: %w", err)
	}
	_, werr := f.Write(b.Bytes())
	serr := f.Sync()
	cerr := f.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("vrrp: noting the VIPs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vrrp: noting the VIPs: %w", err)
	}
	m.noted = b.Bytes()
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// readNoted reads the addresses a previous run noted (none if no file).
func readNoted(dir string) ([]netip.Prefix, error) {
	data, err := os.ReadFile(filepath.Join(dir, leftoverFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	var out []netip.Prefix
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			return out, fmt.Errorf("vrrp: %s:%d: %w", filepath.Join(dir, leftoverFile), i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// dropLeftovers removes, at start, the addresses the previous run noted.
func (m *Manager) dropLeftovers() {
	if m.o.StateDir == "" {
		return
	}
	vips, err := readNoted(m.o.StateDir)
	if err != nil {
		m.o.Log.Error("vrrp: cannot read the VIPs a previous run may have left", "err", err)
	}
	for _, p := range vips {
		removed, err := m.o.DropAddr(p)
		if err != nil {
			m.o.Log.Error("vrrp: cannot remove a VIP a previous run left", "vip", p, "err", err)
			continue
		}
		if removed {
			m.o.Log.Warn("vrrp: removed a VIP the previous run left configured (it did not stop cleanly)", "vip", p)
		}
	}
}

package dns

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

func TestRRLBuckets(t *testing.T) {
	slip := 2
	r := newRRL(config.DNSRRL{ResponsesPerSecond: 2, Burst: 2, Slip: &slip, IPv4Prefix: 24, IPv6Prefix: 56})
	now := time.Unix(1000, 0)
	run := func(a string, n int, at time.Time) (sent, slipped, dropped int) {
		for i := 0; i < n; i++ {
			switch r.check(netip.MustParseAddr(a), at) {
			case rrlSend:
				sent++
			case rrlSlip:
				slipped++
			default:
				dropped++
			}
		}
		return
	}
	tests := []struct {
		name                   string
		addr                   string
		n                      int
		at                     time.Time
		sent, slipped, dropped int
	}{
		{"burst then limited", "198.18.1.1", 6, now, 2, 2, 2},
		{"same /24 shares the bucket", "198.18.1.200", 2, now, 0, 1, 1},
		{"another /24 has its own", "198.18.2.1", 2, now, 2, 0, 0},
		{"IPv4-mapped is the same client network", "::ffff:198.18.3.1", 2, now, 2, 0, 0},
		{"...as its unmapped form", "198.18.3.9", 1, now, 0, 0, 1},
		{"refilled after a second", "198.18.1.1", 2, now.Add(time.Second), 2, 0, 0},
		{"IPv6 /56", "2001:db8:0:1::1", 3, now, 2, 0, 1},
		{"IPv6 same /56: every second limited one slips", "2001:db8:0:ff::1", 1, now, 0, 1, 0},
	}
	for _, tt := range tests {
		s, sl, d := run(tt.addr, tt.n, tt.at)
		if s != tt.sent || sl != tt.slipped || d != tt.dropped {
			t.Errorf("%s: sent %d slipped %d dropped %d, want %d %d %d", tt.name, s, sl, d, tt.sent, tt.slipped, tt.dropped)
		}
	}
	if newRRL(config.DNSRRL{}) != nil || (*rrl)(nil).check(netip.MustParseAddr("198.18.0.1"), now) != rrlSend {
		t.Error("RRL off must send everything")
	}
}

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
	www := rrlToken{kind: rrlAnswer, qtype: 1, name: "www.example.com."}
	run := func(a string, tok rrlToken, n int, at time.Time) (sent, slipped, dropped int) {
		for i := 0; i < n; i++ {
			switch r.check(netip.MustParseAddr(a), tok, at) {
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
		tok                    rrlToken
		n                      int
		at                     time.Time
		sent, slipped, dropped int
	}{
		{"burst then limited", "198.18.1.1", www, 6, now, 2, 2, 2},
		{"same /24 shares the bucket", "198.18.1.200", www, 2, now, 0, 1, 1},
		{"another /24 has its own", "198.18.2.1", www, 2, now, 2, 0, 0},
		{"IPv4-mapped is the same client network", "::ffff:198.18.3.1", www, 2, now, 2, 0, 0},
		{"...as its unmapped form", "198.18.3.9", www, 1, now, 0, 0, 1},
		{"refilled after a second", "198.18.1.1", www, 2, now.Add(time.Second), 2, 0, 0},
		{"IPv6 /56", "2001:db8:0:1::1", www, 3, now, 2, 0, 1},
		{"IPv6 same /56: every second limited one slips", "2001:db8:0:ff::1", www, 1, now, 0, 1, 0},
		// BIND's buckets: a resolver's answers for other names or types are not limited with www's.
		{"same network, another name", "198.18.1.1", rrlToken{kind: rrlAnswer, qtype: 1, name: "mail.example.com."}, 2, now, 2, 0, 0},
		{"same network, another type", "198.18.1.1", rrlToken{kind: rrlAnswer, qtype: 28, name: "www.example.com."}, 2, now, 2, 0, 0},
		{"NXDOMAIN per zone", "198.18.4.1", rrlToken{kind: rrlNXDomain, name: "example.com."}, 2, now, 2, 0, 0},
		{"...so random names share it", "198.18.4.1", rrlToken{kind: rrlNXDomain, name: "example.com."}, 1, now, 0, 0, 1},
		{"...but not with answers", "198.18.4.1", www, 2, now, 2, 0, 0},
		{"errors per network", "198.18.5.1", rrlToken{}, 3, now, 2, 0, 1},
	}
	for _, tt := range tests {
		s, sl, d := run(tt.addr, tt.tok, tt.n, tt.at)
		if s != tt.sent || sl != tt.slipped || d != tt.dropped {
			t.Errorf("%s: sent %d slipped %d dropped %d, want %d %d %d", tt.name, s, sl, d, tt.sent, tt.slipped, tt.dropped)
		}
	}
	if newRRL(config.DNSRRL{}) != nil || (*rrl)(nil).check(netip.MustParseAddr("198.18.0.1"), www, now) != rrlSend {
		t.Error("RRL off must send everything")
	}
}

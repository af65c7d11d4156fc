package dns

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/internal/testenv"
)

// digResult is what dig or kdig printed, parsed.
type digResult struct {
	out                           string
	status                        string
	flags                         map[string]bool
	answer, authority, additional []mdns.RR
	edns                          bool
	udpSize                       string
	ecs                           string
}

var (
	reStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	reFlags  = regexp.MustCompile(`(?im)^;; flags: ([a-z ]*);`)
	reEDNS   = regexp.MustCompile(`(?i)(; EDNS: version: \d+|;; Version: \d+;)`)
	reUDP    = regexp.MustCompile(`(?i)(?:udp: |UDP size: )(\d+)`)
	reECS    = regexp.MustCompile(`CLIENT-SUBNET: (\S+)`)
)

// dig runs tool (dig or kdig) against addr and parses its output.
func dig(t *testing.T, tool, addr string, args ...string) digResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	full := []string{"@" + host, "-p", port}
	if tool == "dig" {
		full = append(full, "+time=2", "+tries=1")
	} else {
		full = append(full, "+time=2", "+retry=0")
	}
	full = append(full, args...)
	out, err := exec.Command(tool, full...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Transfer failed") && !strings.Contains(string(out), "failed") {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(full, " "), err, out)
	}
	r := digResult{out: string(out), flags: map[string]bool{}}
	if m := reStatus.FindStringSubmatch(r.out); m != nil {
		r.status = m[1]
	}
	if m := reFlags.FindStringSubmatch(r.out); m != nil {
		for _, f := range strings.Fields(m[1]) {
			r.flags[f] = true
		}
	}
	r.edns = reEDNS.MatchString(r.out)
	if m := reUDP.FindStringSubmatch(r.out); m != nil {
		r.udpSize = m[1]
	}
	if m := reECS.FindStringSubmatch(r.out); m != nil {
		r.ecs = m[1]
	}
	sec := &r.answer
	for _, line := range strings.Split(r.out, "\n") {
		switch {
		case strings.Contains(line, "ANSWER SECTION"):
			sec = &r.answer
		case strings.Contains(line, "AUTHORITY SECTION"):
			sec = &r.authority
		case strings.Contains(line, "ADDITIONAL SECTION"):
			sec = &r.additional
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
		default:
			rr, err := mdns.NewRR(line)
			if err == nil && rr != nil {
				*sec = append(*sec, rr)
			}
		}
	}
	return r
}

// rrStrings renders records as "name type data" in lower case, sorted.
func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, strings.ToLower(fmt.Sprintf("%s %s %s", h.Name, mdns.TypeToString[h.Rrtype], data)))
	}
	slices.Sort(out)
	return out
}

func expectRRs(t *testing.T, what string, got []mdns.RR, want ...string) {
	t.Helper()
	g := rrStrings(got)
	w := slices.Clone(want)
	for i := range w {
		w[i] = strings.ToLower(w[i])
	}
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n got  %q\n want %q", what, g, w)
	}
}

func expectHeader(t *testing.T, r digResult, status string, aa bool) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %s, want %s\n%s", r.status, status, r.out)
	}
	if r.flags["aa"] != aa {
		t.Errorf("aa=%v, want %v\n%s", r.flags["aa"], aa, r.out)
	}
	if r.flags["ra"] {
		t.Errorf("ra set: we do not recurse\n%s", r.out)
	}
}

const negSOA = "example.com. SOA ns1.example.com. hostmaster.example.com. %d 3600 600 604800 30"

// TestDigAndKdig runs every protocol case with both dig and kdig.
func TestDigAndKdig(t *testing.T) {
	tools := []string{"dig", "kdig"}
	for _, tool := range tools {
		testenv.RequireTool(t, tool)
	}
	st := &StaticState{}
	st.SetActive("dc1")
	srv, addr := startServer(t, st)
	serial := srv.Serial("example.com")
	soa := fmt.Sprintf(negSOA, serial)

	cases := []struct {
		name  string
		args  []string
		kargs []string // for kdig when they differ
		check func(t *testing.T, r digResult)
	}{
		{"service failover answer", []string{"mail.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "mail.example.com. A 198.18.1.100")
			if len(r.answer) == 1 && r.answer[0].Header().Ttl != 10 {
				t.Errorf("TTL %d, want the service TTL 10", r.answer[0].Header().Ttl)
			}
		}},
		{"service AAAA", []string{"mail.example.com", "AAAA"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "mail.example.com. AAAA 2001:db8:1::100")
		}},
		{"service NODATA for other types", []string{"mail.example.com", "TXT"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer)
			expectRRs(t, "authority", r.authority, soa)
		}},
		{"static A", []string{"www.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "www.example.com. A 198.18.0.10", "www.example.com. A 198.18.0.11")
		}},
		{"static AAAA", []string{"www.example.com", "AAAA"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "www.example.com. AAAA 2001:db8::10")
		}},
		{"CNAME chain inside the zone", []string{"alias2.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "alias2.example.com. CNAME alias.example.com.", "alias.example.com. CNAME www.example.com.",
				"www.example.com. A 198.18.0.10", "www.example.com. A 198.18.0.11")
		}},
		{"CNAME query returns the CNAME only", []string{"alias.example.com", "CNAME"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "alias.example.com. CNAME www.example.com.")
		}},
		{"CNAME to a service", []string{"webmail.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "webmail.example.com. CNAME mail.example.com.", "mail.example.com. A 198.18.1.100")
		}},
		{"CNAME to a missing name is NXDOMAIN", []string{"dangling.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NXDOMAIN", true)
			expectRRs(t, "answer", r.answer, "dangling.example.com. CNAME nothere.example.com.")
			expectRRs(t, "authority", r.authority, soa)
		}},
		{"CNAME out of our zones", []string{"outside.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "outside.example.com. CNAME www.example.net.")
		}},
		{"CNAME loop ends", []string{"loop1.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			if len(r.answer) < 2 || len(r.answer) > maxCNAME+1 {
				t.Errorf("%d records for a loop", len(r.answer))
			}
		}},
		{"CNAME across our zones", []string{"WWW.example.org", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "www.example.org. CNAME www.example.com.", "www.example.com. A 198.18.0.10", "www.example.com. A 198.18.0.11")
		}},
		{"MX with additional address", []string{"example.com", "MX"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "example.com. MX 10 mx1.example.com.")
			expectRRs(t, "additional", r.additional, "mx1.example.com. A 198.18.1.25")
		}},
		{"TXT", []string{"example.com", "TXT"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, `example.com. TXT "v=spf1 mx -all"`, `example.com. TXT "hello world"`)
		}},
		{"SRV", []string{"_sip._tcp.example.com", "SRV"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "_sip._tcp.example.com. SRV 10 60 5060 www.example.com.")
			expectRRs(t, "additional", r.additional, "www.example.com. A 198.18.0.10", "www.example.com. A 198.18.0.11", "www.example.com. AAAA 2001:db8::10")
		}},
		{"CAA", []string{"example.com", "CAA"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, `example.com. CAA 0 issue "letsencrypt.org"`)
		}},
		{"NS at the apex with glue", []string{"example.com", "NS"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "example.com. NS ns1.example.com.", "example.com. NS ns2.example.com.")
			expectRRs(t, "additional", r.additional, "ns1.example.com. A 198.18.1.53", "ns2.example.com. A 198.18.2.53")
		}},
		{"SOA", []string{"example.com", "SOA"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, fmt.Sprintf("example.com. SOA ns1.example.com. hostmaster.example.com. %d 3600 600 604800 30", serial))
		}},
		{"delegation is a referral", []string{"host.sub.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", false)
			expectRRs(t, "answer", r.answer)
			expectRRs(t, "authority", r.authority, "sub.example.com. NS ns.sub.example.com.")
			expectRRs(t, "additional", r.additional, "ns.sub.example.com. A 198.18.3.53")
		}},
		{"wildcard", []string{"anything.dev.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "anything.dev.example.com. A 198.18.0.99")
		}},
		{"wildcard two labels down", []string{"a.b.dev.example.com", "TXT"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, `a.b.dev.example.com. TXT "wild"`)
		}},
		{"wildcard NODATA", []string{"x.dev.example.com", "MX"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "authority", r.authority, soa)
		}},
		{"empty non-terminal is NODATA", []string{"empty.nonterminal.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer)
			expectRRs(t, "authority", r.authority, soa)
		}},
		{"NXDOMAIN with SOA for negative caching", []string{"nope.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NXDOMAIN", true)
			expectRRs(t, "authority", r.authority, soa)
			if len(r.authority) == 1 && r.authority[0].Header().Ttl != 30 {
				t.Errorf("negative SOA TTL %d, want min(ttl, minimum)=30", r.authority[0].Header().Ttl)
			}
		}},
		{"NODATA", []string{"www.example.com", "MX"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer)
			expectRRs(t, "authority", r.authority, soa)
		}},
		{"REFUSED outside our zones", []string{"www.example.net", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "REFUSED", false)
			expectRRs(t, "answer", r.answer)
		}},
		{"case-insensitive names", []string{"MaIl.ExAmPlE.CoM", "A"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "mail.example.com. A 198.18.1.100")
			// kdig sends names in lower case; dig keeps them as typed.
			if strings.HasPrefix(r.out, "\n; <<>> DiG") && !strings.Contains(r.out, ";MaIl.ExAmPlE.CoM.") {
				t.Errorf("question case not preserved:\n%s", r.out)
			}
		}},
		{"minimal ANY (RFC 8482)", []string{"example.com", "ANY"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, soa[:strings.Index(soa, " 30")]+" 30")
		}},
		{"ANY at a service", []string{"mail.example.com", "ANY"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "mail.example.com. A 198.18.1.100")
		}},
		{"EDNS answered with OPT", []string{"www.example.com", "A", "+bufsize=4096"}, nil, func(t *testing.T, r digResult) {
			if !r.edns || r.udpSize != "1232" {
				t.Errorf("edns=%v udp=%q, want OPT with 1232\n%s", r.edns, r.udpSize, r.out)
			}
		}},
		{"no EDNS, no OPT", []string{"www.example.com", "A", "+noedns"}, []string{"www.example.com", "A", "+noedns"}, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			if r.edns {
				t.Errorf("OPT in the reply to a query without one\n%s", r.out)
			}
		}},
		{"EDNS version 1 is BADVERS", []string{"www.example.com", "A", "+edns=1", "+noednsnegotiation"}, []string{"www.example.com", "A", "+edns=1"}, func(t *testing.T, r digResult) {
			if r.status != "BADVERS" {
				t.Errorf("status %q, want BADVERS\n%s", r.status, r.out)
			}
			expectRRs(t, "answer", r.answer)
		}},
		{"truncated over UDP", []string{"big.example.com", "TXT", "+noedns", "+ignore"}, nil, func(t *testing.T, r digResult) {
			if !r.flags["tc"] {
				t.Errorf("no TC for a %d-byte answer in 512\n%s", 700, r.out)
			}
			expectRRs(t, "answer", r.answer)
		}},
		{"truncated answer retried on TCP", []string{"big.example.com", "TXT", "+noedns"}, nil, func(t *testing.T, r digResult) {
			if r.flags["tc"] || len(r.answer) != 5 {
				t.Errorf("tc=%v, %d answers; want the whole RRset over TCP\n%s", r.flags["tc"], len(r.answer), r.out)
			}
		}},
		{"TCP", []string{"mail.example.com", "A", "+tcp"}, nil, func(t *testing.T, r digResult) {
			expectHeader(t, r, "NOERROR", true)
			expectRRs(t, "answer", r.answer, "mail.example.com. A 198.18.1.100")
		}},
		{"topology by ECS (dc2 client)", []string{"vdi.example.com", "A", "+subnet=198.18.20.0/24"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.2.101")
			if r.ecs != "198.18.20.0/24/24" {
				t.Errorf("ECS %q, want 198.18.20.0/24/24 (scope of dc2's network)\n%s", r.ecs, r.out)
			}
		}},
		{"topology by ECS (outsider)", []string{"vdi.example.com", "A", "+subnet=192.0.2.0/24"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.1.101")
			if r.ecs != "192.0.2.0/24/24" {
				t.Errorf("ECS %q, want 192.0.2.0/24/24\n%s", r.ecs, r.out)
			}
		}},
		{"topology by ECS too wide for dc2's network", []string{"vdi.example.com", "A", "+subnet=198.18.16.0/21"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.1.101")
			if r.ecs != "198.18.16.0/21/24" {
				t.Errorf("ECS %q, want 198.18.16.0/21/24 (the /21 holds dc2's /24: not specific enough)\n%s", r.ecs, r.out)
			}
		}},
		{"topology by ECS, IPv6 prefix holding dc1's /48", []string{"vdi.example.com", "A", "+subnet=2001:db8::/40"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.1.101")
			if r.ecs != "2001:db8::/40/48" {
				t.Errorf("ECS %q, want 2001:db8::/40/48\n%s", r.ecs, r.out)
			}
		}},
		{"ECS on a failover name has scope 0", []string{"mail.example.com", "A", "+subnet=198.18.20.0/24"}, nil, func(t *testing.T, r digResult) {
			if r.ecs != "198.18.20.0/24/0" {
				t.Errorf("ECS %q, want 198.18.20.0/24/0\n%s", r.ecs, r.out)
			}
		}},
		{"topology by source address (dc2 client)", []string{"-b", "127.0.0.2", "vdi.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.2.101")
		}},
		{"topology by source address (outsider)", []string{"-b", "127.0.0.3", "vdi.example.com", "A"}, nil, func(t *testing.T, r digResult) {
			expectRRs(t, "answer", r.answer, "vdi.example.com. A 198.18.1.101")
		}},
		{"AXFR to a listed secondary", []string{"example.com", "AXFR"}, nil, func(t *testing.T, r digResult) {
			if len(r.answer) < 10 {
				t.Fatalf("%d records transferred\n%s", len(r.answer), r.out)
			}
			first, last := r.answer[0], r.answer[len(r.answer)-1]
			if first.Header().Rrtype != mdns.TypeSOA || last.Header().Rrtype != mdns.TypeSOA {
				t.Errorf("transfer does not start and end with the SOA\n%s", r.out)
			}
			found := false
			for _, rr := range r.answer {
				if a, ok := rr.(*mdns.A); ok && a.Hdr.Name == "mail.example.com." && a.A.String() == "198.18.1.100" {
					found = true
				}
			}
			if !found {
				t.Errorf("service mail missing from the transfer\n%s", r.out)
			}
		}},
		{"AXFR refused to others", []string{"-b", "127.0.0.3", "example.com", "AXFR"}, nil, func(t *testing.T, r digResult) {
			// dig says "Transfer failed.", kdig names the rcode.
			if len(r.answer) != 0 || !strings.Contains(r.out, "Transfer failed") && !strings.Contains(r.out, "REFUSED") {
				t.Errorf("transfer not refused\n%s", r.out)
			}
		}},
	}
	for _, tool := range tools {
		for _, c := range cases {
			t.Run(tool+"/"+c.name, func(t *testing.T) {
				args := c.args
				if tool == "kdig" && c.kargs != nil {
					args = c.kargs
				}
				c.check(t, dig(t, tool, addr, args...))
			})
		}
	}

	// Every question above was counted by name, type and rcode.
	stats := srv.Stats()
	if n := stats.Count("mail.example.com.", mdns.TypeA, mdns.RcodeSuccess); n < 4 {
		t.Errorf("mail.example.com/A/NOERROR counted %d times, want >= 4", n)
	}
	if n := stats.Count("<nonexistent>.example.com.", mdns.TypeA, mdns.RcodeNameError); n < 2 {
		t.Errorf("NXDOMAIN counted %d times, want >= 2", n)
	}
	if stats.TransfersDeny.Load() < 2 {
		t.Errorf("%d transfers refused, want 2", stats.TransfersDeny.Load())
	}
	if stats.Refused.Load() < 2 || stats.Truncated.Load() < 2 || stats.Transfers.Load() < 2 {
		t.Errorf("refused=%d truncated=%d transfers=%d, want >= 2 each", stats.Refused.Load(), stats.Truncated.Load(), stats.Transfers.Load())
	}
}

// TestDigFailover changes the state and expects dig to see the other
// datacenter's VIP within one second.
func TestDigFailover(t *testing.T) {
	testenv.RequireTool(t, "dig")
	st := &StaticState{}
	st.SetActive("dc1")
	_, addr := startServer(t, st)
	answer := func() []string { return addrsOf(dig(t, "dig", addr, "mail.example.com", "A").answer) }
	if got := answer(); !slices.Equal(got, []string{"198.18.1.100"}) {
		t.Fatalf("before failover: %v", got)
	}
	st.SetDatacenter("dc1", false) // VRRP lost its master in dc1
	testenv.Eventually(t, time.Second, "mail → dc2 after dc1 went down", func() bool {
		return slices.Equal(answer(), []string{"198.18.2.100"})
	})
	st.SetDatacenter("dc1", true)
	st.SetBackend("exchange", "dc1", false) // both Exchange servers of dc1 down
	testenv.Eventually(t, time.Second, "mail → dc2 while dc1 has no exchange server", func() bool {
		return slices.Equal(answer(), []string{"198.18.2.100"})
	})
	st.SetBackend("exchange", "dc1", true)
	st.SetActive("dc2") // the cluster decided to fail over
	testenv.Eventually(t, time.Second, "mail → dc2 as the active datacenter", func() bool {
		return slices.Equal(answer(), []string{"198.18.2.100"})
	})
	st.SetActive("dc1")
	testenv.Eventually(t, time.Second, "mail back to dc1", func() bool {
		return slices.Equal(answer(), []string{"198.18.1.100"})
	})
}

// TestDigApplyLive: a config change is served at once, with a new serial,
// and counters of names that remain survive it.
func TestDigApplyLive(t *testing.T) {
	testenv.RequireTool(t, "dig")
	st := &StaticState{}
	srv, addr := startServer(t, st)
	before := srv.Serial("example.com")
	dig(t, "dig", addr, "mail.example.com", "A")
	c := loadTestConfig(t)
	c.DNS.Zones[0].Records[2].Data = []string{"198.18.0.77"}
	if err := srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	r := dig(t, "dig", addr, "www.example.com", "A")
	expectRRs(t, "answer after apply", r.answer, "www.example.com. A 198.18.0.77")
	soa := dig(t, "dig", addr, "example.com", "SOA")
	if len(soa.answer) != 1 || !serialGreater(soa.answer[0].(*mdns.SOA).Serial, before) {
		t.Errorf("SOA after a change: %v, want a serial after %d", soa.answer, before)
	}
	if n := srv.Stats().Count("mail.example.com.", mdns.TypeA, mdns.RcodeSuccess); n != 1 {
		t.Errorf("counter after apply: %d, want 1", n)
	}
	names, _ := srv.Status().(map[string]any)["names"].([]NameCount)
	if len(names) == 0 {
		t.Errorf("status has no per-name counters: %+v", srv.Status())
	}
}

// TestDigIPv6 serves on [::1] and answers AAAA over UDP and TCP.
func TestDigIPv6(t *testing.T) {
	testenv.RequireTool(t, "dig")
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	s := New(Options{Listen: []string{"[::1]:0"}, Sockets: 2, State: &StaticState{}})
	if err := s.Apply(loadTestConfig(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	addr := s.Addrs()[0].String()
	for _, proto := range []string{"+notcp", "+tcp"} {
		r := dig(t, "dig", addr, "mail.example.com", "AAAA", proto)
		expectRRs(t, "answer "+proto, r.answer, "mail.example.com. AAAA 2001:db8:1::100")
	}
}

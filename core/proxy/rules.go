package proxy

import (
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// matchRules returns the first matching rule's backend, or the default.
func (f *Frontend) matchRules(t *Txn) string {
	for i := range f.Cfg.Rules {
		r := &f.Cfg.Rules[i]
		if r.Backend == "" || !tcpRuleMatches(r, t) {
			continue
		}
		return r.Backend
	}
	return f.Cfg.DefaultBackend
}

func tcpRuleMatches(r *config.Rule, t *Txn) bool {
	if nets := r.SrcNets(); len(nets) > 0 {
		ok := false
		for _, n := range nets {
			if n.Contains(t.Client.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.DstPort) > 0 {
		ok := false
		for _, p := range r.DstPort {
			if uint16(p) == t.Local.Port() {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.SNI) > 0 {
		ok := false
		for _, pat := range r.SNI {
			if matchSNI(pat, t.SNI) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return httpRuleMatches(r, t)
}

// matchSNI matches a server name against "name" or "*.domain" (one label).
func matchSNI(pat, sni string) bool {
	if sni == "" {
		return false
	}
	pat, sni = strings.ToLower(pat), strings.ToLower(strings.TrimSuffix(sni, "."))
	if strings.HasPrefix(pat, "*.") {
		i := strings.IndexByte(sni, '.')
		return i > 0 && sni[i:] == pat[1:]
	}
	return pat == sni
}

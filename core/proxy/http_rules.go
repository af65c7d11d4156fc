package proxy

import (
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// httpRuleMatches evaluates a rule's http-mode conditions (host, path
// prefix/regex, method, headers). In tcp mode (t.HTTP nil) a rule with http
// conditions never matches.
func httpRuleMatches(r *config.Rule, t *Txn) bool {
	if !r.HasHTTPConditions() {
		return true
	}
	h := t.HTTP
	if h == nil {
		return false
	}
	if len(r.Method) > 0 && !inList(r.Method, h.Method) {
		return false
	}
	if len(r.Host) > 0 {
		ok := false
		for _, pat := range r.Host {
			if matchSNI(pat, h.Host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.PathPrefix) > 0 {
		ok := false
		for _, p := range r.PathPrefix {
			if strings.HasPrefix(h.Path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if re := r.PathRe(); re != nil && !re.MatchString(h.Path) {
		return false
	}
	for i := range r.Header {
		hm := &r.Header[i]
		vals := h.Header.Values(hm.Name)
		if len(vals) == 0 {
			return false
		}
		if hm.Value == "" && hm.Re() == nil {
			continue
		}
		ok := false
		for _, v := range vals {
			if (hm.Value != "" && strings.EqualFold(v, hm.Value)) || (hm.Re() != nil && hm.Re().MatchString(v)) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func inList(l config.StringList, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

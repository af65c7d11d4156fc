package importer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// parseSize reads HAProxy sizes: a number with an optional k, m or g
// (powers of 1024).
func parseSize(s string) (int, bool) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m") || strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g") || strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > config.MaxStickSize/mult+1 {
		return 0, false
	}
	return n * mult, true
}

// stickTable translates a backend's `stick-table` line into a table named
// after the backend (HAProxy's naming: `table NAME` refers to a proxy).
func (t *translator) stickTable(p *proxy, l hline) {
	st := config.StickTable{Name: p.name}
	args := l.args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			t.warn(l, "stick-table "+a, "missing value")
			return ""
		}
		switch a {
		case "type":
			typ := next()
			switch typ {
			case "ip", "ipv6", "integer", "string", "binary":
				st.Type = typ
			default:
				t.warn(l, "stick-table type "+typ, "want ip, ipv6, integer, string or binary")
				return
			}
		case "len":
			n, err := strconv.Atoi(next())
			if err != nil || n < 1 || n > 256 {
				t.warn(l, "stick-table len", "want 1..256")
				return
			}
			st.Len = n
		case "size":
			n, ok := parseSize(next())
			if !ok || n < 1 || n > config.MaxStickSize {
				t.warn(l, "stick-table size", fmt.Sprintf("want 1..%d entries", config.MaxStickSize))
				return
			}
			st.Size = n
		case "expire":
			d, err := config.ParseDuration(next())
			if err != nil {
				t.warn(l, "stick-table expire", err.Error())
				return
			}
			st.Expire = d
		case "peers":
			next()
			st.Peers = true
		case "nopurge":
			t.warn(l, "stick-table nopurge", "vipgate always evicts the least recently used entry when full")
		case "store", "srvkey", "write-to":
			v := next()
			t.warn(l, "stick-table "+a+" "+v, "not supported (vipgate tables hold the server only)")
		case "recv-only":
			t.warn(l, "stick-table recv-only", "not supported")
		default:
			t.warn(l, "stick-table "+a, "unknown stick-table option")
		}
	}
	if st.Type == "" {
		t.warn(l, "stick-table", "missing type")
		return
	}
	if st.Type != "string" && st.Type != "binary" {
		st.Len = 0
	}
	p.table = &st
	p.tableLine = l
}

// stickKey recognises the sample expressions of the persistence recipes
// vipgate implements.
func stickKey(expr string) string {
	switch expr {
	case "payload_lv(43,1)", "req.payload_lv(43,1)", "res.payload_lv(43,1)", "req_ssl_sess_id", "req.ssl_sess_id":
		return config.StickOnSSLSessionID
	case "src":
		return config.StickOnSrc
	}
	return ""
}

// stickRules translates a backend's stick lines into one rule.
func (t *translator) stickRules(p *proxy) {
	if len(p.stick) == 0 {
		return
	}
	var on, table string
	var line hline
	stored := false
	for _, l := range p.stick {
		if len(l.args) < 3 {
			t.warn(l, l.keyword(), "want stick on|match|store-request|store-response EXPR [table T] [if COND]")
			continue
		}
		kind, expr := l.args[1], l.args[2]
		key := stickKey(expr)
		tbl := ""
		for i := 3; i+1 < len(l.args); i++ {
			if l.args[i] == "table" {
				tbl = l.args[i+1]
			}
		}
		dir := "stick " + kind + " " + expr
		if key == "" {
			t.warn(l, dir, "vipgate persists on the SSL session ID (payload_lv(43,1)), src, sni_src or a Lua key only")
			continue
		}
		switch kind {
		case "on", "match":
			if on != "" && on != key {
				t.warn(l, dir, "a backend has one persistence rule in vipgate; keeping the first")
				continue
			}
			on, table, line = key, tbl, l
		case "store-response", "store-request":
			// The store half of a recipe vipgate does in one rule.
			stored = true
			if on == "" {
				on, table, line = key, tbl, l
			}
		default:
			t.warn(l, "stick "+kind, "unknown stick action")
		}
	}
	if on == "" {
		return
	}
	if on == config.StickOnSSLSessionID && !stored {
		t.warn(line, "stick on "+"payload_lv(43,1)", "without `stick store-response payload_lv(43,1) if serverhello` HAProxy never learns a session; vipgate learns it from the ServerHello")
	}
	if table == "" {
		table = p.name
	}
	if (p.be.Mode == config.ModeHTTP || (p.be.Mode == "" && t.c.Defaults.Mode == config.ModeHTTP)) && on != config.StickOnSrc {
		t.warn(line, "stick on", "in http mode vipgate sticks on src only; use cookie persistence for the rest")
		return
	}
	p.be.Stick = &config.StickRule{Table: table, On: on}
}

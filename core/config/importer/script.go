package importer

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// A vrrp_script is a command line. What it checks decides its vipgate
// track: a check that HAProxy runs is a check of the daemon vipgate
// replaces (it would fail forever once HAProxy is gone and hold the node
// in FAULT), so it becomes the `proxy` track; a check that another daemon
// runs is vipgate's `process` track; anything else stays a command.

// replacedDaemon is the daemon vipgate's proxy takes over.
const replacedDaemon = "haproxy"

// knownDaemons are the names a typo is measured against.
var knownDaemons = []string{"haproxy", "nginx", "keepalived", "httpd", "apache2", "squid", "varnishd", "envoy"}

// scriptKind is what a track script checks.
type scriptKind struct {
	// daemon is the process the script checks is running ("" when the
	// script does something else).
	daemon string
	// typo is the name as written when it is a near miss of a known
	// daemon (daemon then holds the known name).
	typo string
	// localHTTP: the script also fetches a URL on this node (curl/wget of
	// localhost), i.e. checks the service through the local proxy.
	localHTTP bool
	// where says where the check was found when it is inside a script
	// file ("haproxy_check.sh:2").
	where string
	// shell: the script uses shell syntax (&&, |, ;, $...), which
	// keepalived does not interpret (it splits on blanks and execs).
	shell bool
	// argv is the script split as keepalived splits it.
	argv []string
}

// shellSyntax reports whether s needs a shell: operators, expansions,
// redirections.
func shellSyntax(s string) bool {
	for _, op := range []string{"&&", "||", "|", ";", "`", "$(", "${", ">", "<", "*", "~"} {
		if strings.Contains(unquoted(s), op) {
			return true
		}
	}
	return false
}

// unquoted is s without its quoted parts (so a '|' inside a quoted URL
// is not shell syntax).
func unquoted(s string) string {
	var b strings.Builder
	var q rune
	for _, r := range s {
		switch {
		case q != 0 && r == q:
			q = 0
		case q != 0:
		case r == '\'' || r == '"':
			q = r
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitWords splits a command line on blanks, honouring single and double
// quotes, as keepalived splits a script.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	in, q := false, rune(0)
	for _, r := range s {
		switch {
		case q != 0 && r == q:
			q = 0
		case q != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			q, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// daemonOf returns the process a single command checks is running:
// `pidof [-x] N`, `pgrep [-x] N`, `killall -0 N`, `ps -C N ...`,
// `systemctl is-active [-q|--quiet] N[.service]`, `service N status`.
func daemonOf(argv []string) string {
	if len(argv) < 2 {
		return ""
	}
	var args []string
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			args = append(args, a)
		}
	}
	switch filepath.Base(argv[0]) {
	case "pidof", "pgrep":
		if len(args) == 1 {
			return args[0]
		}
	case "killall":
		if argv[1] == "-0" && len(args) == 1 {
			return args[0]
		}
	case "ps":
		for i, a := range argv {
			if a == "-C" && i+1 < len(argv) {
				return argv[i+1]
			}
		}
	case "systemctl":
		if len(args) == 2 && args[0] == "is-active" {
			return strings.TrimSuffix(args[1], ".service")
		}
	case "service":
		if len(args) == 2 && args[1] == "status" {
			return args[0]
		}
	}
	return ""
}

// localFetch reports whether argv fetches a URL on this node.
func localFetch(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	switch filepath.Base(argv[0]) {
	case "curl", "wget":
	default:
		return false
	}
	for _, a := range argv[1:] {
		for _, h := range []string{"://localhost", "://127.0.0.1", "://[::1]"} {
			if strings.Contains(a, h) {
				return true
			}
		}
	}
	return false
}

// classifyScript reads a vrrp_script's command. A lone path is read (at
// its path, else beside the keepalived.conf that names it) and its lines
// are classified the same way.
func classifyScript(script, confFile string, fs FS) scriptKind {
	k := scriptKind{shell: shellSyntax(script), argv: splitWords(script)}
	if !k.shell && len(k.argv) == 1 && strings.HasPrefix(k.argv[0], "/") {
		for _, p := range []string{k.argv[0], filepath.Join(filepath.Dir(confFile), filepath.Base(k.argv[0]))} {
			data, err := fs.ReadFile(p)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for n := 1; sc.Scan(); n++ {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if c := classifyLine(line); c.daemon != "" || c.localHTTP {
					if k.daemon == "" {
						k.daemon, k.typo = c.daemon, c.typo
						k.where = fmt.Sprintf("%s:%d", filepath.Base(p), n)
					}
					k.localHTTP = k.localHTTP || c.localHTTP
				}
			}
			return k
		}
		return k
	}
	c := classifyLine(script)
	k.daemon, k.typo, k.localHTTP = c.daemon, c.typo, c.localHTTP
	if k.shell && !c.only {
		// Some other command is in the pipeline: it is not only a
		// liveness check, so it stays a command.
		k.daemon, k.typo, k.localHTTP = "", "", false
	}
	return k
}

type lineKind struct {
	daemon, typo string
	localHTTP    bool
	// only: every command of the line is a liveness check or a local
	// fetch (or shell plumbing around one: wc, grep, test, exit).
	only bool
}

// classifyLine looks at every command of a shell line (split at &&, ||,
// ;, | and backquotes).
func classifyLine(line string) lineKind {
	var k lineKind
	k.only = true
	cmds := strings.FieldsFunc(line, func(r rune) bool { return r == '&' || r == '|' || r == ';' || r == '`' || r == '(' || r == ')' })
	for _, c := range cmds {
		c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "$"))
		if i := strings.IndexByte(c, '='); i > 0 && !strings.ContainsAny(c[:i], " \t") {
			c = c[i+1:] // count=`ps ...`
		}
		argv := splitWords(c)
		if len(argv) == 0 {
			continue
		}
		if d := daemonOf(argv); d != "" {
			k.daemon, k.typo = canonicalDaemon(d)
			continue
		}
		if localFetch(argv) {
			k.localHTTP = true
			continue
		}
		switch filepath.Base(argv[0]) {
		case "wc", "grep", "test", "[", "exit", "true", "if", "then", "else", "fi", "echo", "head":
			continue
		}
		k.only = false
	}
	return k
}

// canonicalDaemon maps a near miss of a known daemon name (one or two
// letters off, or swapped: "ngxin", "haporxy") to that name.
func canonicalDaemon(name string) (daemon, typo string) {
	for _, d := range knownDaemons {
		if name == d {
			return d, ""
		}
	}
	for _, d := range knownDaemons {
		if editDistance(name, d) <= 2 && len(name) >= 4 {
			return d, name
		}
	}
	return name, ""
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance: a swap of two neighbouring letters counts once.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// kaScriptTrack makes tr the track for vrrp_script s and returns the notes
// for the output; what changes in behaviour is a warning at the script.
func (t *translator) kaScriptTrack(s *kaScript, tr *config.VRRPTrack) []string {
	at := s.scriptLine
	if at == nil {
		at = s.node
	}
	k := classifyScript(s.script, s.node.file, t.fs)
	if k.typo != "" {
		t.warnKA(at, "vrrp_script "+s.name, fmt.Sprintf("%q looks like a typo of %q: as written the check never finds the process (it always failed under keepalived); translated as a check of %s", k.typo, k.daemon, k.daemon))
	}
	found := fmt.Sprintf("%q", s.script)
	if k.where != "" {
		found += " (" + k.where + ")"
	}
	noShell := ""
	if k.shell {
		noShell = fmt.Sprintf(" keepalived runs a script without a shell: it ran %q with the rest of the line as its arguments, so this check probably never passed there (its weight never applied on any node).", k.argv[0])
	}
	switch {
	case k.daemon == replacedDaemon && len(t.c.Frontends) > 0:
		tr.Kind = "proxy"
		how := "checked that HAProxy runs"
		if k.localHTTP {
			how = "checked that HAProxy runs and answers on this node"
		}
		if k.shell && tr.Weight > 0 {
			// The keepalived nodes never had the weight: a vipgate node
			// with it outranks its keepalived peer during a rolling
			// migration and takes the VIP from it (seed004: 100+2 over
			// 101). Without it, priorities stay what keepalived ran with,
			// and a proxy that cannot serve still gives the VIP up (FAULT).
			wat := at
			if s.weightLine != nil {
				wat = s.weightLine
			}
			t.warnKA(wat, "vrrp_script "+s.name, fmt.Sprintf("weight %d dropped: keepalived could not run this shell line, so the check never passed and its weight never applied; with it the vipgate node would outrank the keepalived node and take the VIP during a rolling migration. The proxy track has weight 0: a proxy that cannot serve puts the node in FAULT", tr.Weight))
			tr.Weight = 0
		}
		return []string{fmt.Sprintf("vrrp_script %s %s %s: vipgate's proxy replaces HAProxy, so it is a `proxy` track (the local frontends listen and their backends have a server up); a check of the haproxy process would fail forever once HAProxy is gone.%s", s.name, found, how, noShell)}
	case k.daemon == replacedDaemon:
		// keepalived alone is being replaced: HAProxy keeps running
		// beside vipgate, and a proxy track would have nothing to check.
		tr.Kind, tr.Process = "process", replacedDaemon
		return []string{fmt.Sprintf("vrrp_script %s %s checked that HAProxy runs; without a haproxy.cfg in this import it stays a check of the haproxy process (a `process` track). Import haproxy.cfg too to make it a `proxy` track.%s", s.name, found, noShell)}
	case k.daemon != "" && k.where == "" && !k.localHTTP && !k.shell:
		tr.Kind, tr.Process = "process", k.daemon
		// keepalived runs a script's file as resolved on PATH; Debian's
		// and Ubuntu's pidof is a link to killall5, which then takes the
		// name for a signal and exits 1 (seen with seed001's `pidof
		// nginx` under Debian's keepalived 2.2.7).
		note := ""
		if len(k.argv) > 0 && filepath.Base(k.argv[0]) == "pidof" {
			note = "on Debian and Ubuntu keepalived runs pidof's file, /sbin/killall5, which exits 1 (\"only one argument, a signal number, allowed\"): there this check never passed and the node sat in FAULT; the `process` track does pass while the process runs"
		}
		switch k.daemon {
		case "nginx", "squid", "varnishd", "envoy", "httpd", "apache2":
			msg := fmt.Sprintf("checks that %s runs, which vipgate does not replace: it is a `process` track of %s. If %s was this node's load balancer (replaced by vipgate), make it {kind: proxy}", k.daemon, k.daemon, k.daemon)
			if note != "" {
				msg += ". Note: " + note
			}
			t.warnKA(at, "vrrp_script "+s.name, msg)
		default:
			if note != "" {
				t.warnKA(at, "vrrp_script "+s.name, "a `process` track of "+k.daemon+"; "+note)
			}
		}
		return []string{fmt.Sprintf("vrrp_script %s %s checks that %s runs: a `process` track (same test, no command started).", s.name, found, k.daemon)}
	case k.shell:
		tr.Kind = "exec"
		tr.Command = []string{"/bin/sh", "-c", s.script}
		t.warnKA(at, "vrrp_script "+s.name, "shell syntax: runs through /bin/sh -c."+noShell+" Check it on the node before relying on it")
	default:
		tr.Kind = "exec"
		tr.Command = k.argv
	}
	return nil
}

package importer

import (
	"fmt"
	"strings"
)

// hline is one directive of haproxy.cfg: its words after quote and escape
// processing, and where it was written.
type hline struct {
	file string
	num  int
	args []string
	// env is set when a double-quoted word holds "${VAR}" or "$VAR", which
	// HAProxy expands at start and the importer leaves as written.
	env bool
}

func (l hline) keyword() string {
	if len(l.args) == 0 {
		return ""
	}
	return l.args[0]
}

// hsection is a `global`, `defaults`, `frontend`, ... section.
type hsection struct {
	kind string
	name string
	head hline
	body []hline
}

// haproxySections are the keywords that open a section. Anything else at
// the start of a line belongs to the section above it.
var haproxySections = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "mailers": true, "resolvers": true, "userlist": true, "program": true,
	"http-errors": true, "cache": true, "ring": true, "log-forward": true, "crt-store": true,
	"traces": true,
}

// ParseError is an input that cannot be read as its format.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// parseHAProxy splits haproxy.cfg into sections of directives. It applies
// HAProxy's line grammar: words separated by blanks, "double quotes" (with
// escapes; environment variables are kept as written), 'single quotes'
// (literal), backslash escapes outside single quotes, and # comments.
func parseHAProxy(file string, data []byte) ([]*hsection, error) {
	var out []*hsection
	var cur *hsection
	for i, raw := range strings.Split(string(data), "\n") {
		num := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		args, env, err := splitHAProxyLine(raw)
		if err != nil {
			return nil, &ParseError{File: file, Line: num, Msg: err.Error()}
		}
		if len(args) == 0 {
			continue
		}
		l := hline{file: file, num: num, args: args, env: env}
		if haproxySections[args[0]] {
			cur = &hsection{kind: args[0], head: l}
			if len(args) > 1 {
				cur.name = args[1]
			}
			out = append(out, cur)
			continue
		}
		if cur == nil {
			return nil, &ParseError{File: file, Line: num, Msg: fmt.Sprintf("%q outside of any section (expected global, defaults, frontend, backend, listen, ...)", args[0])}
		}
		cur.body = append(cur.body, l)
	}
	return out, nil
}

// splitHAProxyLine tokenizes one line.
func splitHAProxyLine(s string) (args []string, env bool, err error) {
	var b strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			args = append(args, b.String())
			b.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t':
			flush()
		case '#':
			flush()
			return args, env, nil
		case '\\':
			inWord = true
			n, skip := unescape(s[i+1:])
			b.WriteString(n)
			i += skip
		case '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false, fmt.Errorf("unterminated single quote at column %d", i+1)
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' {
					n, skip := unescape(s[i+1:])
					b.WriteString(n)
					i += skip
					continue
				}
				if c == '$' && i+1 < len(s) && (s[i+1] == '{' || isEnvStart(s[i+1])) {
					env = true
				}
				b.WriteByte(c)
			}
			if !closed {
				return nil, false, fmt.Errorf("unterminated double quote")
			}
		default:
			inWord = true
			b.WriteByte(c)
		}
	}
	flush()
	return args, env, nil
}

func isEnvStart(c byte) bool { return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }

// unescape decodes the escape after a backslash; rest starts after the
// backslash. It returns the text and how many bytes of rest it used.
func unescape(rest string) (string, int) {
	if rest == "" {
		return `\`, 0
	}
	switch rest[0] {
	case 'r':
		return "\r", 1
	case 'n':
		return "\n", 1
	case 't':
		return "\t", 1
	case 'x':
		if len(rest) >= 3 && isHex(rest[1]) && isHex(rest[2]) {
			return string([]byte{hexVal(rest[1])<<4 | hexVal(rest[2])}), 3
		}
		return "x", 1
	}
	return rest[:1], 1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// arg returns word i or "".
func (l hline) arg(i int) string {
	if i < len(l.args) {
		return l.args[i]
	}
	return ""
}

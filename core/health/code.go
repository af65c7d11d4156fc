package health

import "strings"

// StatusCode is HAProxy's check status code for a result (the check_status
// column of `show stat` and the state label of
// haproxy_server_check_status): L4OK/L4TOUT/L4CON for a connection,
// L6OK/L6RSP/L6TOUT for TLS, L7OK/L7STS/L7RSP/L7TOUT for a response,
// PROCOK/PROCERR/PROCTOUT for an external command. It is read from the
// check kind and the result's reason, so that every check kind (Lua ones
// too) gets one without knowing HAProxy's table.
func StatusCode(kind string, r Result) string {
	reason := strings.ToLower(r.Reason)
	timeout := strings.Contains(reason, "timeout") || strings.Contains(reason, "deadline")
	conn := strings.Contains(reason, "connection refused") || strings.Contains(reason, "reset by peer") ||
		strings.Contains(reason, "unreachable") || strings.Contains(reason, "no route") || strings.Contains(reason, "broken pipe")
	tlsErr := strings.HasPrefix(reason, "tls")
	switch kind {
	case "exec":
		switch {
		case r.OK:
			return "PROCOK"
		case timeout:
			return "PROCTOUT"
		}
		return "PROCERR"
	case "tcp", "":
		switch {
		case r.OK:
			return "L4OK"
		case timeout:
			return "L4TOUT"
		case tlsErr:
			return "L6RSP"
		case strings.HasPrefix(reason, "unexpected answer"):
			return "L7RSP" // tcp-check expect: HAProxy's L7RSP
		}
		return "L4CON"
	case "tls":
		switch {
		case r.OK:
			return "L6OK"
		case timeout:
			return "L6TOUT"
		case conn:
			return "L4CON"
		}
		return "L6RSP"
	}
	// http, and kinds that judge an answer (lua, plugins).
	switch {
	case r.OK:
		return "L7OK"
	case timeout:
		return "L7TOUT"
	case conn:
		return "L4CON"
	case tlsErr:
		return "L6RSP"
	case strings.HasPrefix(reason, "http ") && !strings.Contains(reason, "body"):
		return "L7STS"
	}
	return "L7RSP"
}

package health

import "testing"

func TestStatusCode(t *testing.T) {
	tests := []struct {
		kind string
		r    Result
		want string
	}{
		{"tcp", Result{OK: true}, "L4OK"},
		{"tcp", Result{Reason: "connection refused"}, "L4CON"},
		{"tcp", Result{Reason: "timeout"}, "L4TOUT"},
		{"tcp", Result{Reason: `unexpected answer "x"`}, "L7RSP"},
		{"tcp", Result{Reason: "TLS: certificate signed by unknown authority"}, "L6RSP"},
		{"tls", Result{OK: true}, "L6OK"},
		{"tls", Result{Reason: "timeout"}, "L6TOUT"},
		{"http", Result{OK: true}, "L7OK"},
		{"http", Result{Reason: "HTTP 503"}, "L7STS"},
		{"http", Result{Reason: `HTTP 200, body does not match "ok"`}, "L7RSP"},
		{"http", Result{Reason: "connection refused"}, "L4CON"},
		{"http", Result{Reason: "timeout (HTTP 200, reading body: timeout)"}, "L7TOUT"},
		{"exec", Result{OK: true}, "PROCOK"},
		{"exec", Result{Reason: "exit status 2"}, "PROCERR"},
		{"exec", Result{Reason: "timeout"}, "PROCTOUT"},
		{"lua", Result{OK: true}, "L7OK"},
		{"lua", Result{Reason: "not ready"}, "L7RSP"},
	}
	for _, tc := range tests {
		if got := StatusCode(tc.kind, tc.r); got != tc.want {
			t.Errorf("StatusCode(%s, %q ok=%v) = %s, want %s", tc.kind, tc.r.Reason, tc.r.OK, got, tc.want)
		}
	}
}

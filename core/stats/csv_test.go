package stats

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

// TestWriteCSV: HAProxy's header and column order, one row per frontend,
// server and backend, the values where the columns mean the same.
func TestWriteCSV(t *testing.T) {
	now := time.Now()
	src := testSource()
	src.be[0].Servers[1].CheckReason = "HTTP 503"
	src.be[0].Servers[1].Checked = true
	snap := Snapshot{Time: now, Frontends: src.fe, Backends: src.be}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, snap); err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(buf.String(), "\n")
	if !strings.HasPrefix(header, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,") {
		t.Errorf("header: %s", header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, c := range CSVColumns {
		col[c] = i
	}
	get := func(px, sv, c string) string {
		for _, r := range recs {
			if r[0] == px && r[1] == sv {
				return r[col[c]]
			}
		}
		t.Fatalf("no row %s/%s", px, sv)
		return ""
	}
	tests := []struct{ px, sv, col, want string }{
		{"web", "FRONTEND", "status", "OPEN"},
		{"web", "FRONTEND", "type", "0"},
		{"web", "FRONTEND", "rate_max", "9"},
		{"web", "FRONTEND", "qcur", ""},
		{"app", "a", "type", "2"},
		{"app", "a", "check_status", "L7OK"},
		{"app", "a", "hrsp_2xx", "5"},
		{"app", "b", "status", "DOWN"},
		{"app", "b", "chkfail", "4"},
		{"app", "b", "downtime", "12"},
		{"app", "b", "check_code", "503"},
		{"app", "b", "check_duration", "1"},
		{"app", "c", "bck", "1"},
		{"app", "c", "check_status", ""},
		{"app", "BACKEND", "type", "1"},
		{"app", "BACKEND", "act", "1"},
	}
	for _, tc := range tests {
		if got := get(tc.px, tc.sv, tc.col); got != tc.want {
			t.Errorf("%s/%s %s = %q, want %q", tc.px, tc.sv, tc.col, got, tc.want)
		}
	}
	if len(recs) != 5 {
		t.Errorf("%d rows, want 5 (1 frontend, 3 servers, 1 backend)", len(recs))
	}
}

package upstream

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestSlowStartOnAdminChange: as in HAProxy, a server that leaves
// maintenance (set server state ready / enable server) ramps its weight
// over slowstart when it is UP; other operator changes do not ramp.
func TestSlowStartOnAdminChange(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to Admin
		health   Health
		slow     time.Duration
		ramp     bool
	}{
		{"maint to ready ramps", Maint, Ready, Up, time.Hour, true},
		{"maint to drain ramps (ready later continues the ramp)", Maint, Drain, Up, time.Hour, true},
		{"drain to ready does not ramp", Drain, Ready, Up, time.Hour, false},
		{"ready to drain does not ramp", Ready, Drain, Up, time.Hour, false},
		{"ready to maint does not ramp", Ready, Maint, Up, time.Hour, false},
		{"maint to ready while DOWN waits for the rise", Maint, Ready, Down, time.Hour, false},
		{"maint to ready without slowstart", Maint, Ready, Up, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer("b", "s", "127.0.0.1:1", 100)
			s.SetSlowStart(tt.slow)
			s.SetAdmin(tt.from)
			if tt.health == Down {
				s.SetHealth(Down, "test")
			}
			if s.InSlowStart() {
				t.Fatalf("ramping before the change")
			}
			s.SetAdmin(tt.to)
			if got := s.InSlowStart(); got != tt.ramp {
				t.Fatalf("in slowstart after %s -> %s = %v, want %v", tt.from, tt.to, got, tt.ramp)
			}
			if w := s.Weight(); tt.ramp && (w < 1 || w >= 100) {
				t.Fatalf("weight %d right after leaving maintenance with slowstart 1h, want a ramp from 1", w)
			}
		})
	}
}

// TestSlowStartUncheckedServer: a server without health checks has only
// maintenance to come back from; disabling the checks of a DOWN server
// brings it UP with the ramp too (it took no traffic while DOWN).
func TestSlowStartUncheckedServer(t *testing.T) {
	s := NewServer("b", "s", "127.0.0.1:1", 100)
	s.SetSlowStart(time.Hour)
	if s.InSlowStart() || s.Weight() != 100 {
		t.Fatalf("a new unchecked server ramps (weight %d)", s.Weight())
	}
	s.SetChecked(true)
	s.SetHealth(Down, "test")
	s.SetChecked(false)
	if s.Health() != Up || !s.InSlowStart() {
		t.Fatalf("checks disabled on a DOWN server: health %s, ramp %v", s.Health(), s.InSlowStart())
	}
}

// TestObserve: passive health counts consecutive errors the proxy reports
// and acts once per error_limit of them, with HAProxy's layer rules: a
// connection failure counts under layer4 and layer7, a connection success
// resets the count under layer4 only, HTTP answers count under layer7 only.
func TestObserve(t *testing.T) {
	refused := errors.New("connection refused")
	type report struct {
		conn   bool // a connection report (else an HTTP answer)
		ok     bool
		reason string
	}
	fail := report{conn: true, reason: "refused"}
	connOK := report{conn: true, ok: true}
	r503 := report{reason: "HTTP 503"}
	r200 := report{ok: true}
	tests := []struct {
		name    string
		layer7  bool
		reports []report
		want    []string // reasons the action was called with, in order
	}{
		{"layer4: three failures act once", false, []report{fail, fail, fail}, []string{"connection refused"}},
		{"layer4: a success resets", false, []report{fail, fail, connOK, fail, fail}, nil},
		{"layer4: counting starts again after acting", false, []report{fail, fail, fail, fail, fail, fail}, []string{"connection refused", "connection refused"}},
		{"layer4 ignores answers", false, []report{r503, r503, r503}, nil},
		{"layer7: answers count", true, []report{r503, r503, r503}, []string{"HTTP 503"}},
		{"layer7: connection failures count too", true, []report{r503, fail, r503}, []string{"HTTP 503"}},
		{"layer7: a connection success does not reset", true, []report{r503, connOK, r503, connOK, r503}, []string{"HTTP 503"}},
		{"layer7: a good answer resets", true, []report{r503, r503, r200, r503, r503}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer("b", "s", "127.0.0.1:1", 1)
			var got []string
			s.SetObserve(3, tt.layer7, func(reason string) { got = append(got, reason) })
			for _, r := range tt.reports {
				switch {
				case r.conn && r.ok:
					s.ObserveConnect(nil)
				case r.conn:
					s.ObserveConnect(refused)
				default:
					s.ObserveResponse(r.ok, r.reason)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("acted on %q, want %q", got, tt.want)
			}
		})
	}
	s := NewServer("b", "s", "127.0.0.1:1", 1)
	s.SetObserve(0, false, func(string) { t.Error("acted while not observed") })
	for range 20 {
		s.ObserveConnect(refused)
	}
}

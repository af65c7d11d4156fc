package upstream

import (
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

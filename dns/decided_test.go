package dns

import "testing"

// TestDecidedAnswersFromWhatWasPushed: the decisions a node pushed are what
// the server reads; a datacenter they do not judge falls back to Local.
func TestDecidedAnswersFromWhatWasPushed(t *testing.T) {
	d := &Decided{
		Local:    func(dc string) (bool, bool) { return dc == "dc1", dc == "dc1" },
		Backends: func(b, dc string) (bool, bool) { return b == "web", true },
	}
	if a := d.ActiveDatacenter(); a != "" {
		t.Fatalf("active %q before any push", a)
	}
	d.Decide("dc2", map[string]bool{"dc2": false})
	tests := []struct {
		dc             string
		healthy, known bool
	}{
		{"dc2", false, true}, // pushed
		{"dc1", true, true},  // not judged: Local
		{"dc3", false, false},
	}
	for _, tt := range tests {
		if h, k := d.DatacenterHealthy(tt.dc); h != tt.healthy || k != tt.known {
			t.Errorf("%s: healthy=%v known=%v, want %v %v", tt.dc, h, k, tt.healthy, tt.known)
		}
	}
	if a := d.ActiveDatacenter(); a != "dc2" {
		t.Errorf("active %q, want dc2", a)
	}
	if h, _ := d.BackendHealthy("web", "dc2"); !h {
		t.Error("backend health not asked of Backends")
	}
}

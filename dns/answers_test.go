package dns

import (
	"fmt"
	"testing"
)

// TestAnswers: the status page's view of a service is what a query gets,
// and follows a change of the active datacenter at once.
func TestAnswers(t *testing.T) {
	st := &StaticState{}
	st.SetActive("dc1")
	s := New(Options{State: st})
	if err := s.Apply(loadTestConfig(t)); err != nil {
		t.Fatal(err)
	}
	find := func(name string) ServiceAnswer {
		t.Helper()
		for _, a := range s.Answers() {
			if a.Name == name {
				return a
			}
		}
		t.Fatalf("no service %s in %v", name, s.Answers())
		return ServiceAnswer{}
	}
	if a := find("mail.example.com."); a.Policy != "failover" || fmt.Sprint(a.Default.Datacenters) != "[dc1]" ||
		fmt.Sprint(a.Default.Addrs) != "[198.18.1.100 2001:db8:1::100]" {
		t.Errorf("mail: %+v", a)
	}
	vdi := find("vdi.example.com.")
	got := map[string]string{}
	for _, n := range vdi.Networks {
		got[n.Network] = fmt.Sprint(n.Datacenters, n.Addrs)
	}
	want := map[string]string{
		"198.18.10.0/24": "[dc1] [198.18.1.101]", "2001:db8:10::/48": "[dc1] [198.18.1.101]",
		"198.18.20.0/24": "[dc2] [198.18.2.101]", "127.0.0.2/32": "[dc2] [198.18.2.101]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("vdi networks: %v, want %v", got, want)
	}

	st.SetActive("dc2")
	if a := find("mail.example.com."); fmt.Sprint(a.Default.Datacenters, a.Default.Addrs) != "[dc2] [198.18.2.100]" {
		t.Errorf("mail after failover: %+v", a.Default)
	}
	st.SetDatacenter("dc2", false)
	for _, n := range find("vdi.example.com.").Networks {
		if n.Network == "198.18.20.0/24" && fmt.Sprint(n.Datacenters) != "[dc1]" {
			t.Errorf("vdi answers dc2's clients with %v while dc2 is unhealthy", n.Datacenters)
		}
	}
}

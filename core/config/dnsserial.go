package config

import (
	"crypto/sha256"
	"encoding/json"
	"time"
)

// ZoneDigest identifies what zone z of c serves — its records, services
// and the datacenters their answers depend on: a zone's automatic SOA
// serial moves when, and only when, its digest changes.
func (c *Cluster) ZoneDigest(z *DNSZone) [32]byte {
	buf, _ := json.Marshal(struct {
		Z   *DNSZone
		DCs []Datacenter
	}{z, c.Datacenters})
	return sha256.Sum256(buf)
}

// SerialGreater is RFC 1982 serial number comparison: a > b.
func SerialGreater(a, b uint32) bool {
	return a != b && (a-b) < 1<<31
}

// NextSerial is the automatic serial of a zone that changed at t: its Unix
// time, or one more than prev (when had) if that is not greater; never 0.
func NextSerial(prev uint32, had bool, t time.Time) uint32 {
	s := uint32(t.Unix())
	if had && !SerialGreater(s, prev) {
		s = prev + 1
	}
	if s == 0 {
		s = 1
	}
	return s
}

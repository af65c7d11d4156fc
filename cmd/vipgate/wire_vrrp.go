package main

// newVRRP wires the vrrp subsystem into a node. It returns nil when the
// subsystem is not part of this build or not configured.
func newVRRP(e *env) (subsystem, error) { return nil, nil }

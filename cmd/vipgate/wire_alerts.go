package main

// newAlerts wires the alerts subsystem into a node. It returns nil when the
// subsystem is not part of this build or not configured.
func newAlerts(e *env) (subsystem, error) { return nil, nil }

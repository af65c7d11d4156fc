package main

// newStickSync wires the stick subsystem into a node. It returns nil when the
// subsystem is not part of this build or not configured.
func newStickSync(e *env) (subsystem, error) { return nil, nil }

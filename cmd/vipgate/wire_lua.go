package main

// newLua wires the lua subsystem into a node. It returns nil when the
// subsystem is not part of this build or not configured.
func newLua(e *env) (subsystem, error) { return nil, nil }

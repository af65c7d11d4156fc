// Package health decides whether each server is UP or DOWN. The Manager
// runs one worker per checked server: it asks a Checker (a kind from the
// Registry: tcp, http, tls, lua, exec, registered by plugins) on HAProxy's
// inter / fastinter / downinter schedule and folds the results into the
// server's state with a Tracker (rise / fall, counted as consecutive
// results). Passive health (observe, error_limit, on_error) feeds the same
// Tracker from live traffic. Every change is set on the upstream.Server the
// balancers read and published on the event bus.
//
// Like every subsystem, it reconciles to what is pushed to it: Reconcile
// receives the proxy's backends of each new config snapshot and keeps the
// state of servers whose check did not change; it never reads the config
// or the cluster state itself. The Tracker is also the rise/fall debouncer
// of VRRP track sources (cluster/vrrp).
package health

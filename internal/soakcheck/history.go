// Package soakcheck is the checker of the fault-injection soak
// (examples/exchange-2dc, `make soak`): the lab records a History of what
// it did and what it saw, and Check decides, over the whole history, whether
// the cluster kept its promises. It knows nothing of namespaces or
// processes: a history is plain data, so that the checker is tested on
// synthetic histories, good and bad, and a recorded run (history.json) can
// be checked again.
package soakcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Process states of a node at a sample.
const (
	Running = "running"
	Paused  = "paused" // SIGSTOP: the process exists but does nothing
	Dead    = "dead"   // SIGKILL, not restarted yet
	// Starting: restarted or resumed, its admin API not answering yet. A
	// node drops the addresses a crash left before it serves its API, and
	// a resumed one settles its VRRP state first thing.
	Starting = "starting"
)

// History is everything one soak run recorded.
type History struct {
	Seed       int64     `json:"seed"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Samples    []Sample  `json:"samples"`
	Requests   []Request `json:"requests"`
	Faults     []Fault   `json:"faults"`
	Ops        []Op      `json:"ops"`
	Queued     []Queued  `json:"queued"`     // alert mails seen in the nodes' queues
	Mails      []Mail    `json:"mails"`      // copies the MTA delivered
	DeadLetter []Queued  `json:"deadletter"` // the nodes' dead-letter queues at the end
	Events     []Event   `json:"events"`     // what the nodes published (read every few samples)
}

// Event is one event a node published.
type Event struct {
	Node    string    `json:"node"`
	Kind    string    `json:"kind"`
	Level   string    `json:"level"`
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
}

// Sample is the cluster as seen at one instant.
type Sample struct {
	At time.Time `json:"at"`
	// VIPs: VRID → the nodes whose namespace carries the VRID's address.
	VIPs  map[int][]string      `json:"vips"`
	Nodes map[string]NodeSample `json:"nodes"`
}

// NodeSample is one node at one sample.
type NodeSample struct {
	Proc string `json:"proc"` // Running, Paused, Dead
	// Incarnation counts the node's process starts: versions are compared
	// within one.
	Incarnation int  `json:"incarnation"`
	OK          bool `json:"ok"` // its admin API answered; the fields below are set
	// Raft, from one read of the node's committed state: the FSM's last
	// applied index, the active datacenter and config version it holds.
	Term    uint64 `json:"term"`
	Leader  bool   `json:"leader"`
	Index   uint64 `json:"index"`
	Active  string `json:"active"`
	Version uint64 `json:"version"`
	// DocHash identifies the committed document (version > 0).
	DocHash string `json:"doc_hash,omitempty"`
}

// Request is one client request.
type Request struct {
	Client string    `json:"client"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Target string    `json:"target,omitempty"`
	Server string    `json:"server,omitempty"` // the backend that answered
	Err    string    `json:"err,omitempty"`
}

// Fault is one injected fault, from injection to healing.
type Fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"` // node, link, …
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"` // zero: never healed
	// Disruptive faults may fail client requests until the cluster has
	// recovered; the others (MTA down, full disk on a node) must not.
	Disruptive bool `json:"disruptive"`
	// LosesSends: while it lasts, the node named by Target may mail an
	// alert twice (killed between the relay's acceptance and recording it,
	// or unable to record it), which SMTP cannot prevent.
	LosesSends bool   `json:"loses_sends,omitempty"`
	Note       string `json:"note,omitempty"`
}

// Op is an operator's command run during the soak (apply, dc failover).
type Op struct {
	Kind   string    `json:"kind"`
	Node   string    `json:"node"`
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Result string    `json:"result"`
	// DocHash (apply): the document applied. Every document a run applies
	// is different, so a hash names one apply.
	DocHash string `json:"doc_hash,omitempty"`
}

// Queued is an alert mail in a node's queue (or dead-letter queue).
type Queued struct {
	Node    string    `json:"node"`
	ID      string    `json:"id"` // the mail's Message-ID, fixed when queued
	Subject string    `json:"subject"`
	To      []string  `json:"to"`
	At      time.Time `json:"at"`
}

// Mail is one copy the MTA delivered.
type Mail struct {
	ID        string    `json:"id"`
	Recipient string    `json:"recipient"`
	Node      string    `json:"node"`
	Subject   string    `json:"subject"`
	At        time.Time `json:"at"`
}

// Save writes the history as JSON.
func (h *History) Save(path string) error {
	data, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// Load reads a history Save wrote.
func Load(path string) (*History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var h History
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return &h, nil
}

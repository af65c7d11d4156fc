package config

import "time"

// Revision is one committed version of the cluster document, as kept in the
// replicated history (`vipgate config history`, `rollback VERSION`).
type Revision struct {
	Version uint64    `json:"version"`
	Author  string    `json:"author"`
	Time    time.Time `json:"time"`
	// Comment says why (e.g. "rollback to 7").
	Comment string `json:"comment,omitempty"`
	// Index is the raft log index that committed it.
	Index uint64 `json:"index"`
	// Source is the document as applied; kept for the newest revisions only
	// (HistoryKeep), older entries keep their metadata.
	Source []byte `json:"source,omitempty"`
}

// HistoryKeep is how many revisions keep their full source (and so can be
// rolled back to); older revisions keep only who/when.
const HistoryKeep = 50

// HistoryMax bounds the history list itself.
const HistoryMax = 500

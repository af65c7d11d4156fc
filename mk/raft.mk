# Raft-replicated configuration and datacenter decisions: cluster/raft,
# cluster/dc, config diff.
.PHONY: bench-raft fuzz-raft
RAFT_PKGS := ./cluster/raft/ ./cluster/dc/

# Commit-to-applied-on-all-nodes latency on 3 in-process nodes over loopback
# mutual TLS: commit-p50/p99-ms from the commit (the first node's apply) to
# the last node's apply, p50/p99-ms from the proposal (sent to a follower).
bench-raft:
	$(GO) test -run '^$$' -bench 'CommitToApplied' -benchtime 300x ./cluster/raft/

fuzz-raft:
	$(GO) test -run '^$$' -fuzz '^FuzzCommand$$' -fuzztime $(FUZZTIME) ./cluster/raft/

BENCH_TARGETS += bench-raft
FUZZ_TARGETS += fuzz-raft

# The restart-safety test in its long form: 50 restarts (crash or graceful,
# whole cluster or one node) of a 1-node and a 3-node cluster, applies in
# between; `go test` runs a few of them. CI runs it with the e2e target.
.PHONY: test-restarts
test-restarts:
	$(GO) test -count=1 -timeout 20m ./cluster/raft/ -run '^TestRestartsNeverUndoACommit$$' -restarts=50
e2e: test-restarts

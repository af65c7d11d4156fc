# Raft-replicated configuration and datacenter decisions: cluster/raft,
# cluster/dc, config diff.
.PHONY: bench-raft fuzz-raft
RAFT_PKGS := ./cluster/raft/ ./cluster/dc/

# Commit-to-applied-on-all-nodes latency (p50/p99) on 3 in-process nodes
# over loopback mutual TLS (commit_timeout 10ms as in the tests).
bench-raft:
	$(GO) test -run '^$$' -bench 'CommitToApplied' -benchtime 300x ./cluster/raft/

fuzz-raft:
	$(GO) test -run '^$$' -fuzz '^FuzzCommand$$' -fuzztime $(FUZZTIME) ./cluster/raft/

BENCH_TARGETS += bench-raft
FUZZ_TARGETS += fuzz-raft

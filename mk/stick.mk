# Stick tables and SSL session-ID persistence (core/stick, core/proxy/inspect):
# Go benchmarks (table ops, ClientHello parsing, TCP connections/s through
# the proxy with session-ID persistence off vs on in one run) and fuzzing
# of the TLS hello parser and the peer-sync decoder.
.PHONY: bench-stick fuzz-stick

BENCH_TARGETS += bench-stick
FUZZ_TARGETS += fuzz-stick

# The connections/s benchmark is followed by two summary lines: what
# session-ID persistence costs vipgate (on vs off), and vipgate against
# HAProxy's reference recipe (ratio > 1: vipgate is faster).
bench-stick:
	@mkdir -p bin
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkTCPConns' -benchtime 3s ./core/stick/ | grep -E '^(Benchmark|ok)' | tee bin/bench-stick.log
	@awk '/^BenchmarkTCPConns/ { for (i = 2; i < NF; i++) if ($$(i+1) ~ /^conns\/s-/) { m = $$(i+1); sub(/^conns\/s-/, "", m); r[m] = $$i } } \
		END { if (r["on"] && r["off"]) printf "stick ssl_session_id: %d conns/s with persistence, %d without (%.1f%% cost)\n", r["on"], r["off"], (1 - r["on"] / r["off"]) * 100; \
		      if (r["on"] && r["haproxy-on"]) printf "stick ssl_session_id: vipgate %d conns/s, haproxy %d conns/s with persistence: ratio %.2f\n", r["on"], r["haproxy-on"], r["on"] / r["haproxy-on"]; \
		      if (r["off"] && r["haproxy-off"]) printf "stick tcp without persistence: vipgate %d conns/s, haproxy %d conns/s: ratio %.2f\n", r["off"], r["haproxy-off"], r["off"] / r["haproxy-off"] }' bin/bench-stick.log
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkTable|BenchmarkPersister' -benchmem ./core/stick/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./core/proxy/inspect/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./core/stick/peers/ | grep -E '^(Benchmark|ok)'

fuzz-stick:
	$(GO) test -run '^$$' -fuzz '^FuzzHello$$' -fuzztime $(FUZZTIME) ./core/proxy/inspect/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUpdates$$' -fuzztime $(FUZZTIME) ./core/stick/peers/

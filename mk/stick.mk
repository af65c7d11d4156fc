# Stick tables and SSL session-ID persistence (core/stick, core/proxy/inspect):
# Go benchmarks (table ops, ClientHello parsing, TCP connections/s through
# the proxy with session-ID persistence off vs on in one run) and fuzzing
# of the TLS hello parser and the peer-sync decoder.
.PHONY: bench-stick fuzz-stick

BENCH_TARGETS += bench-stick
FUZZ_TARGETS += fuzz-stick

bench-stick:
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkTCPConns' -benchtime 3s ./core/stick/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkTable|BenchmarkPersister' -benchmem ./core/stick/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./core/proxy/inspect/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./core/stick/peers/ | grep -E '^(Benchmark|ok)'

fuzz-stick:
	$(GO) test -run '^$$' -fuzz '^FuzzHello$$' -fuzztime $(FUZZTIME) ./core/proxy/inspect/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUpdates$$' -fuzztime $(FUZZTIME) ./core/stick/peers/

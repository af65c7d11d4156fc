# Direct routing (mode dr): Go benchmarks of the hot path (flow lookup,
# maglev pick, frame rewrite, the whole forward) and the director's CPU per
# request against the tcp proxies (network namespaces; needs root).
.PHONY: bench-go-dr bench-dr

BENCH_TARGETS += bench-go-dr bench-dr

bench-go-dr:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200000x ./core/dr/ | grep -E '^(Benchmark|ok)'

bench-dr: build
	BIN=$(BIN) ./mk/bench-dr.sh

# Authoritative DNS (dns/): Go benchmarks of the query path, dnsperf
# against vipgate and NSD, and the query-handler fuzz target.
.PHONY: bench-dns bench-go-dns fuzz-dns

BENCH_TARGETS += bench-go-dns bench-dns
FUZZ_TARGETS += fuzz-dns

bench-go-dns:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200000x ./dns/ | grep -E '^(Benchmark|ok|PASS)'

bench-dns: build
	BIN=$(BIN) ./dns/testdata/bench-dns.sh

fuzz-dns:
	$(GO) test -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME) ./dns/
	$(GO) test -run '^$$' -fuzz '^FuzzFastParse$$' -fuzztime $(FUZZTIME) ./dns/

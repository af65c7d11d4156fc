# Authoritative DNS (dns/): Go benchmarks of the query path, dnsperf
# against vipgate and NSD, and fuzz targets (query handler, fast parser
# against miekg/dns, config section → answers). New coverage is minimized
# for at most 5 s so that the fuzzing time is spent fuzzing.
.PHONY: bench-dns bench-go-dns fuzz-dns

BENCH_TARGETS += bench-go-dns bench-dns
FUZZ_TARGETS += fuzz-dns

bench-go-dns:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200000x ./dns/ | grep -E '^(Benchmark|ok|PASS)'

bench-dns: build
	BIN=$(BIN) ./dns/testdata/bench-dns.sh

fuzz-dns:
	$(GO) test -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./dns/
	$(GO) test -run '^$$' -fuzz '^FuzzFastParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./dns/
	$(GO) test -run '^$$' -fuzz '^FuzzConfigToAnswers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./dns/
	$(GO) test -run '^$$' -fuzz '^FuzzDNSSection$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./core/config/

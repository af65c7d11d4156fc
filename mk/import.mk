# vipgate import: haproxy.cfg / keepalived.conf translation (core/config/importer).
.PHONY: bench-import fuzz-import

bench-import:
	$(GO) test -run '^$$' -bench . -benchmem ./core/config/importer/

fuzz-import:
	$(GO) test -run '^$$' -fuzz '^FuzzHAProxy$$' -fuzztime $(FUZZTIME) ./core/config/importer/
	$(GO) test -run '^$$' -fuzz '^FuzzKeepalived$$' -fuzztime $(FUZZTIME) ./core/config/importer/

BENCH_TARGETS += bench-import
FUZZ_TARGETS += fuzz-import

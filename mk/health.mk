# Health checks: core/health (manager, tracker) and plugins/check kinds.
.PHONY: bench-health fuzz-health
HEALTH_PKGS := ./core/health/ ./plugins/check/tcp/ ./plugins/check/http/ ./plugins/check/exec/

bench-health:
	$(GO) test -run '^$$' -bench . -benchmem $(HEALTH_PKGS)

fuzz-health:
	$(GO) test -run '^$$' -fuzz '^FuzzTracker$$' -fuzztime $(FUZZTIME) ./core/health/

BENCH_TARGETS += bench-health
FUZZ_TARGETS += fuzz-health

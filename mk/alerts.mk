# Alerts: the SMTP alerter's hot paths (rule matching, persist, render) and
# fuzzing of the durable queue's record decoder.
.PHONY: bench-alerts fuzz-alerts

BENCH_TARGETS += bench-alerts
FUZZ_TARGETS += fuzz-alerts

bench-alerts:
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime 200x ./plugins/alert/email/ ./core/events/ | grep -E '^(Benchmark|ok)'

fuzz-alerts:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./plugins/alert/email/

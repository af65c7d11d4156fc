# Alerts: the event bus and the SMTP alerter's hot paths (rule matching,
# persist with fsync, render) and fuzzing of the durable queue's records.
.PHONY: bench-alerts fuzz-alerts

BENCH_TARGETS += bench-alerts
FUZZ_TARGETS += fuzz-alerts

bench-alerts:
	set -o pipefail; $(GO) test -run '^$$' -bench 'Publish|Unmatched|Render|Decode' -benchmem ./core/events/ ./plugins/alert/email/ | grep -E '^(Benchmark|ok)'
	set -o pipefail; $(GO) test -run '^$$' -bench 'HandleMatched|HandleBurst' -benchmem -benchtime 20x ./plugins/alert/email/ | grep -E '^(Benchmark|ok)'

fuzz-alerts:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./plugins/alert/email/

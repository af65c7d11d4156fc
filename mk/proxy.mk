# Proxy core: TCP-mode benchmarks and fuzzing.
.PHONY: bench-tcp bench-go-proxy bench-profile fuzz-config

BENCH_TARGETS += bench-go-proxy bench-tcp
FUZZ_TARGETS += fuzz-config

bench-go-proxy:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x ./core/balance/ ./core/proxy/ | grep -E '^(Benchmark|ok|PASS)'

bench-tcp: build
	BIN=$(BIN) ./mk/bench-tcp.sh

# Where the CPU per request goes (syscalls, user/sys µs, top functions) for
# vipgate and HAProxy; not in make bench (slow, needs perf and strace).
bench-profile: build
	BIN=$(BIN) MODE=http ./mk/bench-profile.sh
	BIN=$(BIN) MODE=tcp ./mk/bench-profile.sh

fuzz-config:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./core/config/
	$(GO) test -run '^$$' -fuzz FuzzProxyHeader -fuzztime $(FUZZTIME) ./core/proxy/

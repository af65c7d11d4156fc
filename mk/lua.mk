# Lua scripting: scripting/ (runtime, sandbox, txn, net, checks, tracks,
# handlers) and the lua check kind.
.PHONY: bench-lua fuzz-lua
LUA_PKGS := ./scripting/

# One hook call (ns/op, allocs/op), state creation, and requests/s through
# the real HTTP proxy with and without a trivial hook (overhead-%), then
# one line per client count with the two rates (the aim: under 10%).
bench-lua:
	@mkdir -p bin
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem $(LUA_PKGS) | tee bin/bench-lua.log
	@awk '/^BenchmarkHTTPLuaOverhead/ { o = p = l = "?"; \
		for (i = 2; i < NF; i++) { if ($$(i+1) == "overhead-%") o = $$i; if ($$(i+1) == "req/s-plain") p = $$i; if ($$(i+1) == "req/s-lua") l = $$i } \
		split($$1, n, "/"); sub(/-[0-9]+$$/, "", n[2]); \
		printf "lua route hook (%s): %s req/s without, %s req/s with a trivial hook: overhead %s%% (aim < 10%%)\n", n[2], p, l, o }' bin/bench-lua.log

fuzz-lua:
	$(GO) test -run '^$$' -fuzz '^FuzzScript$$' -fuzztime $(FUZZTIME) ./scripting/
	$(GO) test -run '^$$' -fuzz '^FuzzGsub$$' -fuzztime $(FUZZTIME) ./scripting/

BENCH_TARGETS += bench-lua
FUZZ_TARGETS += fuzz-lua

# Lua scripting: scripting/ (runtime, sandbox, txn, net, checks, tracks,
# handlers) and the lua check kind.
.PHONY: bench-lua fuzz-lua
LUA_PKGS := ./scripting/

# One hook call (ns/op, allocs/op), state creation, and requests/s through
# the real HTTP proxy with and without a trivial hook (overhead-%).
bench-lua:
	$(GO) test -run '^$$' -bench . -benchmem $(LUA_PKGS)

fuzz-lua:
	$(GO) test -run '^$$' -fuzz '^FuzzScript$$' -fuzztime $(FUZZTIME) ./scripting/
	$(GO) test -run '^$$' -fuzz '^FuzzGsub$$' -fuzztime $(FUZZTIME) ./scripting/

BENCH_TARGETS += bench-lua
FUZZ_TARGETS += fuzz-lua

# fuzz-long: the paths a hostile input reaches on a running node — the
# config parser, the Lua bridge and the reload — fuzzed for minutes, each
# input under an allocation ceiling and a time ceiling the targets assert
# (testenv.Ceilings; the time ceiling only while fuzzing, never in make
# test, which runs their seed corpora). Seeded with the red-team inputs of
# issue 23: alias bombs, syntax errors deep in large files, truncated
# documents, shared Lua tables through json.encode and log, log floods.
# A crash, an out-of-memory kill or a ceiling crossed fails the target and
# leaves the input in testdata/fuzz/ of the package.
.PHONY: fuzz-long
FUZZTIME_LONG ?= 3m

fuzz-long:
	$(GO) test -run '^$$' -fuzz '^FuzzParseHostile$$' -fuzztime $(FUZZTIME_LONG) -fuzzminimizetime 10s ./core/config/
	$(GO) test -run '^$$' -fuzz '^FuzzLuaBridge$$' -fuzztime $(FUZZTIME_LONG) -fuzzminimizetime 10s ./scripting/
	$(GO) test -run '^$$' -fuzz '^FuzzReload$$' -fuzztime $(FUZZTIME_LONG) -fuzzminimizetime 10s ./cmd/vipgate/

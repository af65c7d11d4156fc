# vipgate — see README.md. `make run` starts the demo, `make test` runs
# everything CI runs.
SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN      := bin/vipgate
# The commit and build time as well: go build records the commit itself only
# with -buildvcs (off where GOFLAGS says so); vipgate version prints them.
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILT    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildTime=$(BUILT)
# Packages with concurrency run under the race detector.
RACE_PKGS ?= ./core/... ./cluster/... ./dns/... ./plugins/... ./scripting/...

.PHONY: all build run test test-short test-race lint fuzz bench clean
.DEFAULT_GOAL := all

# Each area adds its fuzz-<area> and bench-<area> targets (and appends them
# to FUZZ_TARGETS / BENCH_TARGETS) in mk/<area>.mk.
include $(wildcard mk/*.mk)

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vipgate

run: build
	@echo "vipgate demo: curl http://127.0.0.1:8080/      (tcp mode, several times: web1/web2 take turns 1:2)"
	@echo "              curl -i http://127.0.0.1:8088/   (http mode: SRV cookie persistence, access log below)"
	@echo "              ./bin/vipgate status           (the show-stat table; http://127.0.0.1:9900/stats; Ctrl-C to stop)"
	./$(BIN) run --node examples/quickstart/node.yaml --config examples/quickstart/cluster.yaml --demo-backends 127.0.0.1:8081,127.0.0.1:8082

# Import grouping (std, other modules, this module) is checked by a small
# program of ours: goimports sorts inside groups but never merges split ones.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) run ./internal/importgroups $$(git ls-files '*.go')
	$(GO) vet ./...

test-short:
	$(GO) test -short -count=1 ./...

test-race:
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test: lint build
	$(GO) test -count=1 -timeout 25m ./...
	# tcp mode again with every session on goroutines (the path of what the
	# event loop does not serve, and of proxy.event_loop: false)
	VIPGATE_TEST_NO_EVENT_LOOP=1 $(GO) test -count=1 -run 'TestTCP|TestLoop|TestMaxConn|TestDrain|TestListen|TestAccessLog' ./core/proxy/
	$(GO) test -race -short -count=1 -timeout 20m $(RACE_PKGS)

FUZZTIME ?= 30s
fuzz: $(FUZZ_TARGETS)

# bench runs every area's benchmarks (Go micro-benchmarks and side-by-side
# runs against HAProxy, nginx, NSD, keepalived), then repeats the comparison
# lines (those with a ratio) as a summary.
bench: build
	@mkdir -p bin
	@set -o pipefail; $(MAKE) --no-print-directory $(BENCH_TARGETS) 2>&1 | tee bin/bench.log
	@echo; echo "== summary: vipgate vs the reference tools (ratio > 1 means vipgate is faster) =="
	@grep -iE 'ratio' bin/bench.log || echo "(no comparison lines)"

clean:
	rm -rf bin

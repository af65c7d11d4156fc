# VRRP: Go benchmarks of the packet codec and state machine, the failover
# timing harness (vipgate and keepalived side by side in network
# namespaces; needs root and keepalived), fuzzing of the packet decoder.
.PHONY: bench-vrrp vrrp-timing fuzz-vrrp

BENCH_TARGETS += bench-vrrp
FUZZ_TARGETS += fuzz-vrrp

bench-vrrp: vrrp-timing
	$(GO) test -run '^$$' -bench . -benchmem ./cluster/vrrp/ ./plugins/track/ | grep -E '^(Benchmark|ok)'

# Client-visible gap (UDP probe every 2ms to the VIP) when the master's
# link goes down and on a clean shutdown, per advert interval and daemon.
vrrp-timing:
	@set -o pipefail; VRRP_TIMING=1 $(GO) test -v -count=1 -timeout 10m -run '^TestFailoverTiming$$' ./cluster/vrrp/ | grep -E '^vrrp-timing|^(ok|FAIL)'

fuzz-vrrp:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./cluster/vrrp/

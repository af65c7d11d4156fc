# HTTP mode: Go benchmarks of the hot path, wrk against vipgate and HAProxy,
# fuzzing of the strict HTTP/1 parser.
.PHONY: bench-http bench-https bench-go-http fuzz-http

BENCH_TARGETS += bench-go-http bench-http bench-https
FUZZ_TARGETS += fuzz-http

bench-go-http:
	$(GO) test -run '^$$' -bench . -benchmem ./core/proxy/httpparse/ | grep -E '^(Benchmark|ok)'
	$(GO) test -run '^$$' -bench 'BenchmarkHTTP' -benchmem -benchtime 3s ./core/proxy/ | grep -E '^(Benchmark|ok)'

bench-http: build
	BIN=$(BIN) ./mk/bench-http.sh

bench-https: build
	BIN=$(BIN) ./mk/bench-https.sh

fuzz-http:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME) ./core/proxy/httpparse/
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME) ./core/proxy/httpparse/
	$(GO) test -run '^$$' -fuzz '^FuzzChunked$$' -fuzztime $(FUZZTIME) ./core/proxy/httpparse/
	$(GO) test -run '^$$' -fuzz '^FuzzHTTPForwardedHead$$' -fuzztime $(FUZZTIME) ./core/proxy/

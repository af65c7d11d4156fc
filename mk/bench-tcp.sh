#!/usr/bin/env bash
# TCP-mode throughput: vipgate vs HAProxy in front of the same nginx, same
# core, interleaved (mk/bench-lib.sh). Two loads: keep-alive requests (relay
# of small messages) and one request per connection (accept + connect +
# close: the connection rate).
MODE=tcp BASE=18480 DUR=${DUR:-8s}
. "$(dirname "$0")/bench-lib.sh"
bench_start
bench_run "keep-alive requests"
bench_latency "keep-alive requests"
bench_scaling "keep-alive requests"
bench_run "new connection per request" -H "Connection: close"
bench_latency "new connection per request" -close
bench_scaling "new connection per request" -H "Connection: close"

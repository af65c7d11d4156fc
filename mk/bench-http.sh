#!/usr/bin/env bash
# HTTP-mode throughput: vipgate vs HAProxy in front of the same nginx, same
# core, interleaved (mk/bench-lib.sh). Both proxies run with their defaults
# for keep-alive toward the server (haproxy http-reuse safe; vipgate reuse
# safe) and add no headers.
MODE=http BASE=18490
HAP_EXTRA="  timeout http-keep-alive 10s"
VIP_TIMEOUTS=", http_keep_alive: 10s"
. "$(dirname "$0")/bench-lib.sh"
bench_start
bench_run "keep-alive GET"
bench_run "close per request" -H "Connection: close"

#!/usr/bin/env bash
# HTTPS (TLS termination): vipgate vs HAProxy in front of the same plain
# nginx, same core, interleaved (mk/bench-lib.sh with TLS=1: one ECDSA
# P-256 certificate for both; TLS 1.3 with the clients' defaults). A kept-
# alive connection costs the record layer per request; a connection per
# request costs a full handshake each.
MODE=http BASE=18520 TLS=1
HAP_EXTRA="  timeout http-keep-alive 10s"
VIP_TIMEOUTS=", http_keep_alive: 10s"
. "$(dirname "$0")/bench-lib.sh"
bench_start
bench_run "TLS keep-alive GET"
bench_latency "TLS keep-alive GET"
bench_run "TLS handshake per request" -H "Connection: close"

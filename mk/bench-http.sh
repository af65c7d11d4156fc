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
bench_latency "keep-alive GET"
bench_scaling "keep-alive GET"
bench_run "close per request" -H "Connection: close"
bench_latency "close per request" -close
bench_scaling "close per request" -H "Connection: close"

# Keep-alive connections opened before a reload go on reusing server
# connections after it (issue 23: they fell to a new server connection per
# request). One wrk run spans a header-only reload; the requests vipgate
# answered (its counters survive the reload) and the connections nginx
# accepted in the 5 s before and the 5 s after it are compared. Printed
# only: timing fails nothing.
bench_reload() {
  local d=5 n0 n1 n2 n3 a0 a1 a2 a3
  served() { curl -fsS "http://127.0.0.1:$ADM/api/v1/stats" | tr -d ' \n' | grep -o '"hrsp":\[[0-9,]*\]' | head -1 | cut -d, -f3; }
  # nginx's accepted connections (each read is one more: -1 below).
  accepted() { curl -fsS "http://127.0.0.1:$NGX/nginx_status" | awk 'NR==3{print $1}'; }
  taskset -c 1 wrk -t1 -c"$CONNS" -d$((2 * d + 3))s "http://127.0.0.1:$VIP/" >/dev/null 2>&1 &
  local w=$!
  sleep 1 # wrk's connections are open
  n0=$(served); a0=$(accepted); sleep "$d"; n1=$(served); a1=$(accepted)
  sed -i 's/default_backend: be}/default_backend: be, http: {via: bench}}/' "$T/cluster.yaml"
  kill -HUP "$VIP_PID"
  n2=$(served); a2=$(accepted); sleep "$d"; n3=$(served); a3=$(accepted)
  wait "$w" || true
  local applied=no
  curl -fsSI "http://127.0.0.1:$VIP/" 2>/dev/null | grep -qi '^via: 1.1 bench' && applied=yes
  printf '%-4s %-26s vipgate %7d req/s %5d new server conns before; %7d req/s %5d new server conns in the %ds after (reload applied: %s)   after/before ratio %s\n' \
    "$MODE" "keep-alive across reload" $(((n1 - n0) / d)) $((a1 - a0 - 1)) $(((n3 - n2) / d)) $((a3 - a2 - 1)) "$d" "$applied" \
    "$(awk -v a="$((n3 - n2))" -v b="$((n1 - n0))" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')"
}
bench_reload

#!/usr/bin/env bash
# HTTP-mode throughput: vipgate vs HAProxy (Debian package) in front of the
# same nginx backend, same core, interleaved rounds, in one run.
#
# Both proxies get cpu 0 (vipgate GOMAXPROCS=1, haproxy nbthread 1); wrk and
# nginx share cpu 1. Both proxies run with their defaults for keep-alive
# toward the server (haproxy http-reuse safe; vipgate reuse safe) and add no
# headers. Prints requests/s and p99 latency for each, and the ratio.
set -euo pipefail
BIN=${BIN:-bin/vipgate}
DUR=${DUR:-6s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-64}
T=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
PATH=$PATH:/usr/sbin
for t in haproxy nginx wrk taskset; do command -v $t >/dev/null || { echo "bench-http: $t not installed (apt-get install haproxy nginx-light wrk)"; exit 1; }; done

NGX=18490 HAP=18491 VIP=18492 ADM=18499
mkdir -p "$T/ngx"
cat > "$T/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server { listen 127.0.0.1:$NGX; location / { return 200 "hello from nginx\n"; } }
}
NGX
cat > "$T/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
frontend fe
  bind 127.0.0.1:$HAP
  default_backend be
backend be
  server s1 127.0.0.1:$NGX
HAP
cat > "$T/cluster.yaml" <<VIPC
defaults: {mode: http, maxconn: 20000, timeouts: {connect: 5s, client: 30s, server: 30s, http_keep_alive: 10s}}
frontends: [{name: fe, bind: "127.0.0.1:$VIP", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: "127.0.0.1:$NGX"}]}]
VIPC
cat > "$T/node.yaml" <<NODE
name: bench
datacenter: dc1
data_dir: $T/data
admin: {listen: "127.0.0.1:$ADM"}
log: {level: warn}
NODE

taskset -c 1 nginx -c "$T/nginx.conf" -p "$T/ngx" &
taskset -c 0 haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
GOMAXPROCS=1 taskset -c 0 "$BIN" run --node "$T/node.yaml" --config "$T/cluster.yaml" >"$T/vipgate.log" 2>&1 &
for p in $NGX $HAP $VIP; do
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done

# one port wrk-args... -> "rps p99ms"
one() {
  local port=$1; shift
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" --latency "$@" "http://127.0.0.1:$port/" 2>&1 | awk '
    /Requests\/sec/ {rps=int($2)}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; p99=v}
    END {printf "%d %.2f\n", rps, p99}'
}
run() { # name wrk-args...
  local name=$1; shift
  local bv=0 bh=0 pv=0 ph=0 r v h
  for r in $(seq "$ROUNDS"); do
    read -r v pvr < <(one $VIP "$@"); read -r h phr < <(one $HAP "$@")
    if [ "$v" -gt "$bv" ]; then bv=$v; pv=$pvr; fi
    if [ "$h" -gt "$bh" ]; then bh=$h; ph=$phr; fi
  done
  printf '%-26s vipgate %7s req/s p99 %6sms   haproxy %7s req/s p99 %6sms   ratio %s\n' "$name" "$bv" "$pv" "$bh" "$ph" \
    "$(awk -v a="$bv" -v b="$bh" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')"
}
echo "== HTTP mode, one core each (haproxy $(haproxy -v | awk 'NR==1{print $3}'), best of $ROUNDS x $DUR, $CONNS connections) =="
echo "   (load average before: $(cut -d' ' -f1-3 /proc/loadavg); other load on these cores skews both sides)"
curl -fsS "http://127.0.0.1:$VIP/" >/dev/null || { echo "vipgate does not answer"; cat "$T/vipgate.log"; exit 1; }
run "keep-alive GET"
run "close per request" -H "Connection: close"

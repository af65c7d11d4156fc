#!/usr/bin/env bash
# TCP-mode throughput: vipgate vs HAProxy (Debian package) in front of the
# same nginx backend, on the same core, interleaved, in one run.
#
# Both proxies get one core (cpu 0: vipgate GOMAXPROCS=1, haproxy nbthread
# 1); wrk and nginx share the other. Two loads: keep-alive requests (relay
# of small messages) and one request per connection (accept + connect +
# close, the connection rate). Prints requests/s for each and the ratio.
set -euo pipefail
BIN=${BIN:-bin/vipgate}
DUR=${DUR:-8s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-64}
T=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for t in haproxy nginx wrk taskset; do command -v $t >/dev/null || PATH=$PATH:/usr/sbin; command -v $t >/dev/null || { echo "bench-tcp: $t not installed (apt-get install haproxy nginx-light wrk)"; exit 1; }; done

NGX=18480 HAP=18481 VIP=18482 ADM=18489
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
  server { listen 127.0.0.1:$NGX; location / { return 200 "hello from nginx\n"; } }
}
NGX
cat > "$T/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$HAP
  default_backend be
backend be
  server s1 127.0.0.1:$NGX
HAP
cat > "$T/cluster.yaml" <<VIPC
defaults: {mode: tcp, maxconn: 20000, timeouts: {connect: 5s, client: 30s, server: 30s}}
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

rps() { # port extra-wrk-args...
  local port=$1; shift
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$@" "http://127.0.0.1:$port/" 2>&1 | awk '/Requests\/sec/ {print int($2)}' || echo 0
}
best() { sort -n | tail -1; }
run() { # name wrk-args...
  local name=$1; shift
  local v h vs=() hs=()
  for r in $(seq "$ROUNDS"); do
    vs+=("$(rps $VIP "$@")"); hs+=("$(rps $HAP "$@")")
  done
  v=$(printf '%s\n' "${vs[@]}" | best); h=$(printf '%s\n' "${hs[@]}" | best)
  printf '%-28s vipgate %8s req/s   haproxy %8s req/s   ratio %s\n' "$name" "$v" "$h" \
    "$(awk -v a="$v" -v b="$h" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')"
}
echo "== TCP mode, one core each (haproxy $(haproxy -v | awk 'NR==1{print $3}'), best of $ROUNDS x $DUR, $CONNS connections) =="
run "keep-alive requests"
run "new connection per request" -H "Connection: close"

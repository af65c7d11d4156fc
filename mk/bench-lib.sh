# Shared by mk/bench-tcp.sh and mk/bench-http.sh (source it): vipgate and
# HAProxy (Debian package) side by side in front of the same nginx, on the
# same core, interleaved rounds, with wrk as the client.
#
# Both proxies get cpu 0 (vipgate GOMAXPROCS=1, haproxy nbthread 1); wrk and
# nginx share cpu 1. The caller sets MODE (tcp|http) and BASE (a port base:
# nginx BASE, haproxy BASE+1, vipgate BASE+2, vipgate admin BASE+9), may set
# HAP_EXTRA / VIP_DEFAULTS, then calls bench_start and bench_run.
set -euo pipefail
BIN=${BIN:-bin/vipgate}
DUR=${DUR:-6s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-64}
HAP_EXTRA=${HAP_EXTRA:-}
T=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
PATH=$PATH:/usr/sbin
for t in haproxy nginx wrk taskset curl; do
  command -v $t >/dev/null || { echo "bench-$MODE: $t not installed (apt-get install haproxy nginx-light wrk curl util-linux)"; exit 1; }
done
NGX=$BASE HAP=$((BASE + 1)) VIP=$((BASE + 2)) ADM=$((BASE + 9))
# A second vipgate with GOMAXPROCS=2 on both cores, for bench_scaling only.
VIP2=$((BASE + 3)) ADM2=$((BASE + 8))
# The open-loop client of bench_latency (internal/loadgen).
"${GO:-go}" build -o "$T/loadgen" ./internal/loadgen

# TLS=1 (mk/bench-https.sh): both proxies terminate TLS with the same
# throwaway ECDSA P-256 certificate; wrk and loadgen speak HTTPS.
SCHEME=http HAP_SSL="" VIP_TLS="" LG_TLS=""
if [ -n "${TLS:-}" ]; then
  command -v openssl >/dev/null || { echo "bench-$MODE: openssl not installed"; exit 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench.test \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
  cat "$T/cert.pem" "$T/key.pem" > "$T/both.pem"
  SCHEME=https HAP_SSL=" ssl crt $T/both.pem" LG_TLS=-tls
  VIP_TLS=", tls: {certificates: [{cert: $T/cert.pem, key: $T/key.pem}]}"
fi

bench_start() {
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
  server { listen 127.0.0.1:$NGX; location / { return 200 "hello from nginx\n"; } location = /nginx_status { stub_status; } }
}
NGX
  cat > "$T/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 8000
defaults
  mode $MODE
  timeout connect 5s
  timeout client 30s
  timeout server 30s
$HAP_EXTRA
frontend fe
  bind 127.0.0.1:$HAP$HAP_SSL
  default_backend be
backend be
  server s1 127.0.0.1:$NGX
HAP
  cat > "$T/cluster.yaml" <<VIPC
defaults: {mode: $MODE, maxconn: 20000, timeouts: {connect: 5s, client: 30s, server: 30s${VIP_TIMEOUTS:-}}}
frontends: [{name: fe, bind: "127.0.0.1:$VIP", default_backend: be$VIP_TLS}]
backends: [{name: be, servers: [{name: s1, address: "127.0.0.1:$NGX"}]}]
VIPC
  cat > "$T/node.yaml" <<NODE
name: bench
datacenter: dc1
data_dir: $T/data
admin: {listen: "127.0.0.1:$ADM"}
log: {level: warn}
${VIP_NODE:-}
NODE
  sed -e "s/127.0.0.1:$VIP/127.0.0.1:$VIP2/" "$T/cluster.yaml" > "$T/cluster2.yaml"
  sed -e "s/127.0.0.1:$ADM/127.0.0.1:$ADM2/" -e "s#$T/data#$T/data2#" "$T/node.yaml" > "$T/node2.yaml"
  taskset -c 1 nginx -c "$T/nginx.conf" -p "$T/ngx" &
  taskset -c 0 haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
  HAP_PID=$!
  GOMAXPROCS=1 taskset -c 0 "$BIN" run --node "$T/node.yaml" --config "$T/cluster.yaml" >"$T/vipgate.log" 2>&1 &
  VIP_PID=$!
  GOMAXPROCS=2 taskset -c 0,1 "$BIN" run --node "$T/node2.yaml" --config "$T/cluster2.yaml" >"$T/vipgate2.log" 2>&1 &
  VIP2_PID=$!
  local p i
  for p in $NGX $HAP $VIP $VIP2; do
    for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
  done
  for p in $VIP $HAP; do
    curl -kfsS "$SCHEME://127.0.0.1:$p/" >/dev/null || { echo "bench-$MODE: the proxy on :$p does not answer"; cat "$T/vipgate.log" "$T/haproxy.log"; exit 1; }
  done
  echo "== $MODE mode${TLS:+ over TLS}, one core each (haproxy $(haproxy -v | awk 'NR==1{print $3}'), best of $ROUNDS x $DUR, $CONNS connections) =="
  echo "   (load average before: $(cut -d' ' -f1-3 /proc/loadavg); other load on these cores skews both sides)"
}

# cpu_ticks PID: user + system CPU time of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_one PORT PID WRK-ARGS... -> "rps p99ms cpu-us-per-request". The CPU
# time the proxy spent per request is steadier than the rate on a shared
# machine: a neighbour's load slows the proxy down, but does not make each
# request cost it more cycles.
bench_one() {
  local port=$1 pid=$2; shift 2
  local t0 out
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" --latency "$@" "$SCHEME://127.0.0.1:$port/" 2>&1)
  echo "$out" | awk -v t0="$t0" -v t1="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n=$1}
    /Requests\/sec/ {rps=int($2)}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; p99=v}
    END {printf "%d %.2f %.1f\n", rps, p99, (n > 0 ? (t1 - t0) / hz * 1e6 / n : 0)}'
}

# bench_run NAME WRK-ARGS...: ROUNDS interleaved rounds, the best of each
# side (highest rate, lowest CPU per request), one line with the ratios
# (make bench's summary greps "ratio"): the rate, and the CPU per request
# (haproxy's / vipgate's: above 1 vipgate spends less).
bench_run() {
  local name=$1; shift
  local bv=0 bh=0 pv=0 ph=0 cv=0 ch=0 r v h pvr phr cvr chr
  for r in $(seq "$ROUNDS"); do
    read -r v pvr cvr < <(bench_one "$VIP" "$VIP_PID" "$@"); read -r h phr chr < <(bench_one "$HAP" "$HAP_PID" "$@")
    if [ "$v" -gt "$bv" ]; then bv=$v; pv=$pvr; fi
    if [ "$h" -gt "$bh" ]; then bh=$h; ph=$phr; fi
    HAP_BEST=$bh
    cv=$(awk -v a="$cv" -v b="$cvr" 'BEGIN{print (a == 0 || (b > 0 && b < a)) ? b : a}')
    ch=$(awk -v a="$ch" -v b="$chr" 'BEGIN{print (a == 0 || (b > 0 && b < a)) ? b : a}')
  done
  printf '%-4s %-26s vipgate %7s req/s p99 %6sms %6sus cpu/req   haproxy %7s req/s p99 %6sms %6sus cpu/req   ratio %s, cpu ratio %s\n' \
    "$MODE" "$name" "$bv" "$pv" "$cv" "$bh" "$ph" "$ch" \
    "$(awk -v a="$bv" -v b="$bh" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')" \
    "$(awk -v a="$cv" -v b="$ch" 'BEGIN{ if (a>0) printf "%.2f", b/a; else print "n/a"}')"
}

# bench_latency NAME [-close]: tail latency at a fixed offered load, 50% and
# 90% of HAProxy's maximum rate, sent open loop by internal/loadgen
# (constant rate, latency from each request's due time: no coordinated
# omission; wrk -R is not in Debian's wrk). The maximum is the lower of the
# best HAProxy rate of the bench_run before it (HAP_BEST, wrk's) and what
# loadgen itself drives through HAProxy when asked for that rate: the
# client shares cpu 1 with nginx and tops out below wrk, and 90% of wrk's
# rate would leave both sides saturated, their tails the client's queue.
# (Asked for far more than it can send, loadgen falls behind ever more and
# answers far less: the probe asks for wrk's rate, not more.) Rounds interleave
# vipgate and HAProxy at each load; the round with the lower p99 is kept
# for each. "done" (answered per second) below the asked rate still means
# the client or the proxy could not keep up: the line says "saturated".
bench_latency() {
  local name=$1; shift
  local pct rate r side port pid t0 out orate o50 o99 o999 oerr ocpu bv bh vr v50 v99 v999 ve vc hr h50 h99 h999 he hc
  local base=$HAP_BEST lgmax
  out=$(GOMAXPROCS=1 taskset -c 1 "$T/loadgen" -addr "127.0.0.1:$HAP" -rate "$HAP_BEST" -c "$CONNS" -d "$DUR" $LG_TLS "$@" 2>&1) || out="rate 0"
  read -r _ lgmax _ <<<"$out"
  if [ "${lgmax:-0}" -gt 0 ] && [ "$lgmax" -lt "$base" ]; then base=$lgmax; fi
  for pct in 50 90; do
    rate=$((base * pct / 100)) bv="" bh=""
    for r in $(seq "$ROUNDS"); do
      for side in vipgate haproxy; do
        port=$VIP pid=$VIP_PID; [ $side = haproxy ] && port=$HAP pid=$HAP_PID
        t0=$(cpu_ticks "$pid")
        out=$(GOMAXPROCS=1 taskset -c 1 "$T/loadgen" -addr "127.0.0.1:$port" -rate "$rate" -c "$CONNS" -d "$DUR" $LG_TLS "$@" 2>&1) ||
          out="rate 0 p50 0 p99 0 p99.9 0 errors -1"
        read -r _ orate _ o50 _ o99 _ o999 _ oerr <<<"$out"
        # The proxy's CPU per request at this rate (both sides answer the
        # same requests: a like-for-like cost, free of the saturation
        # effects of the wrk lines).
        ocpu=$(awk -v t0="$t0" -v t1="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" -v n="$orate" -v d="${DUR%s}" \
          'BEGIN{ if (n > 0) printf "%.1f", (t1 - t0) / hz * 1e6 / (n * d); else print 0 }')
        if [ $side = vipgate ]; then
          if [ -z "$bv" ] || awk -v a="$o99" -v b="$(cut -d' ' -f3 <<<"$bv")" 'BEGIN{exit !(a < b)}'; then bv="$orate $o50 $o99 $o999 $oerr $ocpu"; fi
        elif [ -z "$bh" ] || awk -v a="$o99" -v b="$(cut -d' ' -f3 <<<"$bh")" 'BEGIN{exit !(a < b)}'; then bh="$orate $o50 $o99 $o999 $oerr $ocpu"; fi
      done
    done
    read -r vr v50 v99 v999 ve vc <<<"$bv"
    read -r hr h50 h99 h999 he hc <<<"$bh"
    printf '%-4s %-26s vipgate done %6s/s p50 %6sms p99 %6sms p99.9 %6sms %6sus cpu/req err %s   haproxy done %6s/s p50 %6sms p99 %6sms p99.9 %6sms %6sus cpu/req err %s   p99 ratio %s, cpu ratio %s%s\n' \
      "$MODE" "$name at ${pct}% (${rate}/s)" "$vr" "$v50" "$v99" "$v999" "$vc" "$ve" "$hr" "$h50" "$h99" "$h999" "$hc" "$he" \
      "$(awk -v a="$v99" -v b="$h99" 'BEGIN{ if (a>0) printf "%.2f", b/a; else print "n/a"}')" \
      "$(awk -v a="$vc" -v b="$hc" 'BEGIN{ if (a>0) printf "%.2f", b/a; else print "n/a"}')" \
      "$(awk -v r="$rate" -v a="$vr" -v b="$hr" 'BEGIN{ if (a < 0.97 * r || b < 0.97 * r) print " (saturated: done below the asked rate)"}')"
  done
}

# bench_scaling NAME WRK-ARGS...: vipgate's CPU per request with GOMAXPROCS=2
# (both cores) against GOMAXPROCS=1 (one core), interleaved rounds, the
# lowest of each. Lock or cache-line contention on the hot path would show
# as more CPU per request with two Ps (goal: no more than 5% above).
bench_scaling() {
  local name=$1; shift
  local c1=0 c2=0 r1=0 r2=0 r v p c
  for r in $(seq "$ROUNDS"); do
    read -r v p c < <(bench_one "$VIP" "$VIP_PID" "$@")
    if [ "$v" -gt "$r1" ]; then r1=$v; fi
    c1=$(awk -v a="$c1" -v b="$c" 'BEGIN{print (a == 0 || (b > 0 && b < a)) ? b : a}')
    read -r v p c < <(bench_one "$VIP2" "$VIP2_PID" "$@")
    if [ "$v" -gt "$r2" ]; then r2=$v; fi
    c2=$(awk -v a="$c2" -v b="$c" 'BEGIN{print (a == 0 || (b > 0 && b < a)) ? b : a}')
  done
  printf '%-4s %-26s vipgate GOMAXPROCS=1 %7s req/s %6sus cpu/req   GOMAXPROCS=2 %7s req/s %6sus cpu/req   cpu 2/1 ratio %s\n' \
    "$MODE" "scaling, $name" "$r1" "$c1" "$r2" "$c2" \
    "$(awk -v a="$c2" -v b="$c1" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')"
}

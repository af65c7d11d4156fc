#!/usr/bin/env bash
# Direct routing's director cost against the proxies': one director
# namespace runs vipgate (mode dr on a VIP and a tcp-mode proxy) and
# HAProxy (tcp mode), on cpu 0; nginx (a server with the VIP on lo) and wrk
# (the client) in their own namespaces on cpu 1, all on one bridge in
# 198.18.50.0/24. For 1 KiB and 1 MiB responses it prints the director's
# CPU time per request in each mode, mode dr once per datapath (xdp, when it
# loads here, and af_packet), and the ratio 1 MiB / 1 KiB: a proxy relays
# every response byte, a director sees only the client's packets (for a
# download, its ACKs: their number, not the bytes, grows with the response;
# with af_packet each crosses user space, with xdp the kernel forwards it).
#
# What "director cpu" counts: the director process's user+system time
# (/proc/PID/stat) plus cpu 0's irq+softirq time (/proc/stat). XDP and the
# kernel's receive path run in softirq, not in any process, so the director
# namespace's eth0 has its receive steered to cpu 0 (RPS), and every other
# interface's to cpu 1: cpu 0's softirq time is then the director's own
# receive, XDP and send (and whatever else the shared machine runs there:
# noise). The same count for every mode.
# Needs root.
set -euo pipefail
BIN=${BIN:-bin/vipgate}
DUR=${DUR:-5s}
CONNS=${CONNS:-16}
PATH=$PATH:/usr/sbin
[ "$(id -u)" = 0 ] || { echo "bench-dr: needs root (network namespaces); skipped"; exit 0; }
for t in ip haproxy nginx wrk taskset curl; do
  command -v $t >/dev/null || { echo "bench-dr: $t not installed; skipped"; exit 0; }
done
P=vgbdr$$ T=$(mktemp -d) SEG=198.18.50 VIP=198.18.50.100
chmod 755 "$T"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
  for n in c d s sw; do ip netns del $P-$n 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
for n in c d s sw; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
ip -n $P-sw link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
ip -n $P-sw link set br0 up
i=0
for pair in c:50 d:11 s:21; do
  n=${pair%%:*} a=${pair##*:}; i=$((i + 1))
  ip link add $P$i netns $P-$n type veth peer name p$i netns $P-sw
  ip -n $P-$n link set $P$i name eth0
  ip -n $P-sw link set p$i master br0 up
  ip -n $P-$n addr add $SEG.$a/24 dev eth0
  ip -n $P-$n link set eth0 up
done
# Receive processing: the director's on cpu 0, everyone else's on cpu 1
# (veth delivers on the sending CPU unless RPS moves it).
ip netns exec $P-d sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
for n in c s; do ip netns exec $P-$n sh -c 'echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus'; done
for i in 1 2 3; do ip netns exec $P-sw sh -c "echo 2 > /sys/class/net/p$i/queues/rx-0/rps_cpus"; done
# The real server: the VIP on lo, ARP sysctls (docs/forwarding.md).
ip netns exec $P-s sh -c 'for i in all eth0; do echo 1 > /proc/sys/net/ipv4/conf/$i/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/$i/arp_announce; done'
ip -n $P-s addr add $VIP/32 dev lo
head -c 1024 /dev/zero > "$T/1k"; head -c 1048576 /dev/zero > "$T/1m"
cat > "$T/nginx.conf" <<NGX
worker_processes 1;
daemon off;
master_process off;
pid $T/nginx.pid;
error_log $T/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; server { listen 80; root $T; } }
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
  bind $SEG.11:8002
  default_backend be
backend be
  server s1 $SEG.21:80
HAP
cat > "$T/cluster.yaml" <<VIPC
vrrp:
  instances: [{name: vi, interface: eth0, vrid: 50, version: 3, advert_interval: 100ms, vips: ["$VIP/24"]}]
frontends:
  - {name: dr, mode: dr, bind: "$VIP:80", default_backend: dr}
  - {name: px, bind: "$SEG.11:8001", default_backend: px}
backends:
  - {name: dr, servers: [{name: s1, address: "$SEG.21:80"}]}
  - {name: px, servers: [{name: s1, address: "$SEG.21:80"}]}
VIPC
for dp in xdp af_packet; do
  printf 'name: d\ndatacenter: dc1\ndata_dir: %s/data\nadmin: {listen: "127.0.0.1:9900"}\nlog: {level: info}\ndr: {datapath: %s}\n' "$T" "$dp" > "$T/node-$dp.yaml"
done
ip netns exec $P-s taskset -c 1 nginx -c "$T/nginx.conf" &
ip netns exec $P-d taskset -c 0 haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAP_PID=$!
# start_vipgate DATAPATH: runs the director with that datapath; VIP_PID.
start_vipgate() {
  ip netns exec $P-d env GOMAXPROCS=1 taskset -c 0 "$BIN" run --node "$T/node-$1.yaml" --config "$T/cluster.yaml" >"$T/vipgate-$1.log" 2>&1 &
  VIP_PID=$!
  local ok=
  for _ in $(seq 100); do
    if ip netns exec $P-c curl -fs -m 1 -o /dev/null "http://$VIP/1k" && ip netns exec $P-c curl -fs -m 1 -o /dev/null "http://$SEG.11:8001/1k" &&
      ip netns exec $P-c curl -fs -m 1 -o /dev/null "http://$SEG.11:8002/1k"; then ok=1; break; fi
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "bench-dr: the director does not answer"; cat "$T/vipgate-$1.log" "$T/haproxy.log"; exit 1; }
}
stop_vipgate() { kill "$VIP_PID"; wait "$VIP_PID" 2>/dev/null || true; }
# datapath: what the running director's status says it forwards with.
datapath() {
  ip netns exec $P-d curl -fsS -m 2 http://127.0.0.1:9900/api/v1/status/dr | tr ',' '\n' | sed -n 's/.*"datapath": *"\([a-z_]*\)".*/\1/p' | head -1
}
# cpu_ticks PID: the process's user+system ticks and cpu 0's irq+softirq.
cpu_ticks() { echo $(($(awk '{print $14 + $15}' "/proc/$1/stat") + $(awk '$1 == "cpu0" {print $7 + $8}' /proc/stat))); }
# forwarded: the frames the running director has sent on (both datapaths;
# the XDP share is read into it once a second).
forwarded() {
  ip netns exec $P-d curl -fsS -m 2 http://127.0.0.1:9900/api/v1/status/dr | tr ',' '\n' | sed -n 's/.*"forwarded_frames": *\([0-9]*\).*/\1/p' | head -1
}
# one URL PID -> "req/s cpu-us-per-request cpu-seconds"
one() {
  local t0 out
  t0=$(cpu_ticks "$2")
  out=$(ip netns exec $P-c taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$1" 2>&1)
  echo "$out" | awk -v t0="$t0" -v t1="$(cpu_ticks "$2")" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n=$1} /Requests\/sec/ {rps=int($2)}
    END {printf "%d %.1f %.3f\n", rps, (n > 0 ? (t1 - t0) / hz * 1e6 / n : 0), (t1 - t0) / hz}'
}
echo "== director CPU per request (process + cpu 0 irq/softirq), mode dr per datapath vs tcp proxies (one core each; $DUR, $CONNS connections; load before: $(cut -d' ' -f1-3 /proc/loadavg)) =="
declare -A cpu
names=()
measure() { # name host port pid
  local rps c secs f0 f1 pps
  for size in 1k 1m; do
    f0=
    [ "${1#dr-}" != "$1" ] && f0=$(forwarded)
    read -r rps c secs < <(one "http://$2:$3/$size" "$4")
    cpu[$1-$size]=$c
    pps=
    if [ -n "$f0" ]; then
      # Forwarded packets per second of director CPU (process + cpu 0's
      # softirq): what one core forwards. The XDP count lags up to 1s.
      sleep 1.2
      f1=$(forwarded)
      pps=$(awk -v a="$f0" -v b="$f1" -v s="$secs" 'BEGIN{ if (s>0) printf "  %9.0f packets/s per core", (b-a)/s }')
    fi
    printf 'dr   %-14s %s response  %7s req/s  %8sus director cpu/req%s\n' "$1" "$size" "$rps" "$c" "$pps"
  done
  names+=("$1")
}
for dp in xdp af_packet; do
  start_vipgate $dp
  got=$(datapath)
  if [ "$got" != "$dp" ]; then
    echo "dr   $dp: not available here (the director runs $got: $(grep -o 'forwarding with the [^"]*' "$T/vipgate-$dp.log" | head -1))"
  else
    measure "dr-$dp" $VIP 80 $VIP_PID
  fi
  if [ $dp = af_packet ]; then
    measure vipgate-tcp $SEG.11 8001 $VIP_PID
  fi
  stop_vipgate
done
measure haproxy-tcp $SEG.11 8002 $HAP_PID
for name in "${names[@]}"; do
  printf 'dr   %-14s director cpu/req 1 MiB / 1 KiB ratio %s\n' "$name" \
    "$(awk -v a="${cpu[$name-1m]}" -v b="${cpu[$name-1k]}" 'BEGIN{ if (b>0) printf "%.1f", a/b; else print "n/a"}')"
done

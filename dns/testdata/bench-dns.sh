#!/usr/bin/env bash
# DNS throughput: vipgate vs NSD (Debian package) answering the same name,
# measured by dnsperf in one run, each server pinned to one core (cpu 0:
# vipgate GOMAXPROCS=1 with one UDP socket, NSD server-count 1, RRL off);
# dnsperf runs on the other core. Prints queries/s for each and the ratio.
# Bounded to about a minute: DUR seconds per run, ROUNDS rounds of both.
set -euo pipefail
BIN=${BIN:-bin/vipgate}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-2}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
PATH=$PATH:/usr/sbin
for t in nsd dnsperf taskset; do command -v $t >/dev/null || { echo "bench-dns: $t not installed (apt-get install nsd dnsperf util-linux)"; exit 1; }; done
NSDP=18530 VIPP=18531 ADM=18539
SERIAL=2026112201

# The same zone for both: the service name is a static A record for NSD
# and a failover service (computed per query) for vipgate.
cat > "$T/example.com.zone" <<ZONE
\$ORIGIN example.com.
\$TTL 300
@    SOA ns1.example.com. hostmaster.example.com. $SERIAL 3600 600 604800 60
@    NS  ns1.example.com.
ns1  A   198.18.1.53
mail 10 A 198.18.1.100
ZONE
cat > "$T/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1@$NSDP
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$T"
  database: ""
  pidfile: "$T/nsd.pid"
  xfrdfile: "$T/xfrd.state"
  zonelistfile: "$T/zone.list"
  logfile: "$T/nsd.log"
  rrl-ratelimit: 0
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
NSD
cat > "$T/cluster.yaml" <<CL
datacenters:
  - {name: dc1}
  - {name: dc2}
dns:
  zones:
    - name: example.com
      ns: [ns1.example.com]
      soa: {serial: $SERIAL}
      records:
        - {name: ns1, type: A, data: 198.18.1.53}
      services:
        - name: mail
          vips: {dc1: [198.18.1.100], dc2: [198.18.2.100]}
CL
cat > "$T/node.yaml" <<NODE
name: bench
datacenter: dc1
data_dir: $T/data
admin: {listen: "127.0.0.1:$ADM"}
log: {level: info}
dns: {listen: ["127.0.0.1:$VIPP"], sockets: 1}
NODE
printf 'mail.example.com A\n' > "$T/queries"

taskset -c 0 nsd -d -c "$T/nsd.conf" &
GOMAXPROCS=1 taskset -c 0 "$BIN" run --node "$T/node.yaml" --config "$T/cluster.yaml" 2>"$T/vipgate.log" &
for p in $NSDP $VIPP; do
  ok=
  for _ in $(seq 50); do
    if dig +short +time=1 +tries=1 @127.0.0.1 -p $p mail.example.com A | grep -qE "^198[.]18[.]"; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "bench-dns: server on port $p does not answer"; cat "$T/vipgate.log" "$T/nsd.log" 2>/dev/null; exit 1; }
done

run() { # port → queries/s
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$T/queries" -l "$DUR" -c 8 -q 200 -S 0 2>&1 \
    | awk '/Queries per second/ {print int($4)} /Queries lost/ {lost=$3} END {}' | head -1
}
nsd_total=0 vip_total=0
for r in $(seq "$ROUNDS"); do
  n=$(run $NSDP); v=$(run $VIPP)
  echo "round $r: nsd ${n} q/s   vipgate ${v} q/s"
  nsd_total=$((nsd_total + n)); vip_total=$((vip_total + v))
done
n=$((nsd_total / ROUNDS)); v=$((vip_total / ROUNDS))
# "ratio" is what make bench's summary picks up.
echo "bench-dns: nsd ${n} q/s, vipgate ${v} q/s: ratio $(awk -v a="$v" -v b="$n" 'BEGIN {printf "%.2f", (b ? a/b : 0)}') (vipgate/nsd)"

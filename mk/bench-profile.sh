#!/usr/bin/env bash
# Where the CPU per request goes, for vipgate and HAProxy under the same wrk
# load as mk/bench-http.sh / mk/bench-tcp.sh (same layout, mk/bench-lib.sh):
# for each of the four loads (http|tcp x keep-alive|close), in one run:
#   - system calls and context switches per request (perf stat tracepoints,
#     low overhead), user and system CPU µs per request (/proc),
#   - the system calls by name (strace -c -f over a separate, slower run),
#   - the top functions (vipgate: a pprof CPU profile from its admin port;
#     both: perf record -e cpu-clock, kernel and user space).
# Output goes under OUT (default bin/profile). Not part of make bench: it
# takes a while and needs perf and strace (apt-get install linux-perf strace).
# make bench-profile MODE=http|tcp, DUR=...
set -euo pipefail
MODE=${MODE:-http}
BASE=$([ "$MODE" = http ] && echo 18500 || echo 18510)
OUT=${OUT:-bin/profile}
DUR=${DUR:-5s}
for t in perf strace; do command -v $t >/dev/null || { echo "bench-profile: $t not installed"; exit 1; }; done
if [ "$MODE" = http ]; then
  HAP_EXTRA="  timeout http-keep-alive 10s"
  VIP_TIMEOUTS=", http_keep_alive: 10s"
fi
. "$(dirname "$0")/bench-lib.sh"
mkdir -p "$OUT"
bench_start

# utime/stime in ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
wrk_n() { awk '/requests in/ {print $1}'; }

# profile_one NAME SIDE PORT PID WRK-ARGS...
profile_one() {
  local name=$1 side=$2 port=$3 pid=$4; shift 4
  local hz u0 s0 u1 s1 n pst sys cs
  hz=$(getconf CLK_TCK)
  read -r u0 s0 < <(ticks "$pid")
  perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o "$T/pstat" &
  pst=$!
  n=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$@" "http://127.0.0.1:$port/" | wrk_n)
  kill -INT $pst; wait $pst 2>/dev/null || true
  read -r u1 s1 < <(ticks "$pid")
  sys=$(awk -F, '/raw_syscalls/ {print $1}' "$T/pstat")
  cs=$(awk -F, '/context-switches/ {print $1}' "$T/pstat")
  awk -v n="$n" -v hz="$hz" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v sys="$sys" -v cs="$cs" -v name="$MODE $name" -v side="$side" 'BEGIN{
    printf "%-22s %-8s %7.0f req/s  user %5.1fus sys %5.1fus cpu/req  %5.1f syscalls/req  %5.2f ctxsw/req\n",
      name, side, n / '"${DUR%s}"', du / hz * 1e6 / n, ds / hz * 1e6 / n, sys / n, cs / n }'

  # Syscalls by name: strace slows the proxy a lot, so its own run; the
  # counts are divided by that run's requests.
  local tag="$OUT/$MODE-${name// /-}-$side"
  strace -c -f -p "$pid" -o "$tag.strace" 2>/dev/null &
  pst=$!
  sleep 0.5
  n=$(taskset -c 1 wrk -t1 -c"$CONNS" -d3s "$@" "http://127.0.0.1:$port/" | wrk_n)
  kill -INT $pst; wait $pst 2>/dev/null || true
  awk -v n="$n" 'NR>2 && $NF != "total" && $4 ~ /^[0-9]+$/ {printf "%.2f %s\n", $4 / n, $NF}' "$tag.strace" |
    sort -rn | head -12 | awk '{printf "%s %s, ", $2, $1} END {print ""}' | sed 's/^/    per request: /'

  # Top functions, kernel and user: perf on the process.
  perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$tag.perf" 2>/dev/null &
  pst=$!
  sleep 0.3
  local pp=""
  if [ "$side" = vipgate ]; then
    curl -fsS -o "$tag.pprof" "http://127.0.0.1:$ADM/debug/pprof/profile?seconds=${DUR%s}" &
    pp=$!
  fi
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$@" "http://127.0.0.1:$port/" >/dev/null
  kill -INT $pst; wait $pst 2>/dev/null || true
  [ -z "$pp" ] || wait "$pp" || true
  perf report -i "$tag.perf" --no-children --sort sym -g none --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15 > "$tag.top" || true
  sed 's/^/    /' "$tag.top" | head -10
  if [ -n "$pp" ]; then
    go tool pprof -top -nodecount=12 "$BIN" "$tag.pprof" 2>/dev/null | grep -E '^ +[0-9]' | sed 's/^/    pprof /' || true
  fi
}

for load in "keep-alive" "close"; do
  args=()
  [ "$load" = close ] && args=(-H "Connection: close")
  profile_one "$load" vipgate "$VIP" "$VIP_PID" "${args[@]}"
  profile_one "$load" haproxy "$HAP" "$HAP_PID" "${args[@]}"
done
echo "profiles in $OUT (go tool pprof -top bin/vipgate $OUT/*.pprof; perf report -i $OUT/*.perf)"

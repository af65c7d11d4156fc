#!/usr/bin/env bash
# `make e2e` and `make soak`: the reference deployment (examples/exchange-2dc) end to end, in
# network namespaces on this machine. Needs root. Installs the Debian
# packages it uses (.ci/deps/e2e.apt) when they are missing, builds vipgate
# and the driver, runs the seven disasters, prints the table, and exits
# non-zero when any assertion failed. Whatever happens (failure, Ctrl-C,
# SIGTERM), the namespaces and the processes in them are removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"
if [ "$(id -u)" != 0 ]; then
  echo "make e2e: needs root (network namespaces, VRRP, port 443)" >&2
  exit 1
fi
missing=""
for p in $(sed 's/#.*//' .ci/deps/e2e.apt); do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p bin
go build -o bin/vipgate ./cmd/vipgate
go test -c -o bin/e2e-exchange-2dc ./examples/exchange-2dc

state=$(mktemp)
pid=""
cleanup() {
  # The driver removes its namespaces itself; this is for a driver that was
  # killed outright: the processes in its namespaces, then the namespaces.
  while read -r id; do
    for ns in $(ip netns list | awk '{print $1}' | grep "^$id-" || true); do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    done
  done <"$state"
  rm -f "$state"
}
trap cleanup EXIT
# Ctrl-C reaches the driver directly; a SIGTERM sent to this script only is
# passed on, so the driver still cleans up.
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null' INT TERM

cd examples/exchange-2dc
# E2E_TEST picks the driver: TestExchange2DC (the seven disasters, the
# default) or TestSoak (the fault-injection soak: SOAK_DURATION, SEED).
test="${E2E_TEST:-TestExchange2DC}"
timeout="${E2E_TIMEOUT:-8m}"
VIPGATE_E2E=1 VIPGATE_SOAK=1 CI=true VIPGATE_BIN="$PWD/../../bin/vipgate" E2E_STATE="$state" \
  ../../bin/e2e-exchange-2dc -test.run "^$test\$" -test.v -test.timeout "$timeout" &
pid=$!
status=0
wait "$pid" || status=$?
# wait returns early when a trapped signal arrives: wait for the driver itself.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || status=$?; done
exit "$status"

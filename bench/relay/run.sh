#!/bin/sh
# Builds relay-bench (meson target) and runs a series of call counts, each
# started only once the machine is idle (co-tenant builds and tests wreck the
# latency tails on a 2-core VM).
#   bench/relay/run.sh [OUT_DIR] [DURATION] "CALLS..." [extra relay-bench options]
# e.g. bench/relay/run.sh /tmp/relay-results 30 "500 1000 2000 3000"
#      bench/relay/run.sh /tmp/relay-results 20 "50 200" --gst
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-/tmp/relay-results}
duration=${2:-30}
calls=${3:-"500 1000 2000 3000"}
shift 3 2>/dev/null || shift $#
mkdir -p "$out"
bin="$out/relay-bench"

# the meson target (it links media/ and libsrtp2); copied so a rebuild cannot change a series
[ -d "$root/build" ] || meson setup "$root/build"
ninja -C "$root/build" bench/relay-bench
cp "$root/build/bench/relay-bench" "$bin"

# idle = under 10% of the machine busy over 3 s; give up waiting after 10 min
wait_idle() {
  tries=0
  while :; do
    set -- $(head -1 /proc/stat)
    b0=$(( $2 + $3 + $4 + $7 + $8 )); t0=$(( $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 ))
    sleep 3
    set -- $(head -1 /proc/stat)
    b1=$(( $2 + $3 + $4 + $7 + $8 )); t1=$(( $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 ))
    busy=$(( 100 * (b1 - b0) / (t1 - t0 + 1) ))
    [ "$busy" -lt 10 ] && return 0
    tries=$((tries + 1))
    [ "$tries" -ge 200 ] && { echo "machine still ${busy}% busy: running anyway" >&2; return 0; }
  done
}

for n in $calls; do
  wait_idle
  "$bin" --calls "$n" --duration "$duration" "$@" | tee "$out/calls-$n$(echo "$*" | tr -d ' -').txt"
done

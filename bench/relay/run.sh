#!/bin/sh
# Builds relay-bench outside the tree and runs a series of call counts, each
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

gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wno-unused-parameter -I"$root/media" \
    $(pkg-config --cflags glib-2.0 gstreamer-1.0 gstreamer-app-1.0) \
    "$here/relay-bench.c" "$root"/media/td-relay*.c "$root/media/td-rtp-context.c" "$root/media/td-tune.c" "$root/media/td-g711.c" \
    $(pkg-config --libs glib-2.0 gstreamer-1.0 gstreamer-app-1.0) -lm -pthread -o "$bin"

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

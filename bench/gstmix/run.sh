#!/bin/sh
# Runs the GStreamer room bench (issue 11) from an existing meson build dir
# (`ninja -C build` builds bench/gstmix/gst-rooms by default): both feeds
# (appsrc, pad) at each room count, then rooms started while 50 run. Each
# step starts only once the machine is idle (co-tenants wreck the figures on
# a 2-core VM); outputs in OUT_DIR.
#   bench/gstmix/run.sh [BUILD_DIR] [OUT_DIR] [DURATION] ["ROOMS..."] [extra gst-rooms options]
# e.g. bench/gstmix/run.sh build /tmp/gstmix-results 15 "10 50 100"
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=${2:-/tmp/gstmix-results}
duration=${3:-15}
counts=${4:-"10 50 100"}
shift 4 2>/dev/null || shift $#
bin="$build/bench/gstmix/gst-rooms"
[ -x "$bin" ] || { echo "no $bin: run ninja -C $build first" >&2; exit 1; }
mkdir -p "$out"

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

step() {   # step NAME ARGS...: one run, its output kept in OUT_DIR/NAME.txt
  name=$1; shift
  wait_idle
  echo "== $(date -u +%FT%TZ) gst-rooms $*"
  rc=0
  "$bin" "$@" > "$out/$name.txt" 2>&1 || rc=$?
  cat "$out/$name.txt"
  [ "$rc" -eq 0 ] || { echo "gst-rooms $* failed ($rc)" >&2; exit "$rc"; }
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
# each feed as GStreamer sets a pipeline PLAYING, then with the clock and
# base time preset (--preset-time: the fix for the start-up stall)
for feed in appsrc pad; do
  for preset in "" --preset-time; do
    tag=$feed${preset:+-preset}
    for n in $counts; do
      step "$tag-$n" --feed "$feed" $preset --rooms "$n" --duration "$duration" "$@"
    done
    # start-up under load: 10 rooms started while 50 run, at once and with
    # their first packets 1 s after PLAYING (a room set up before media flows)
    step "$tag-50-late10" --feed "$feed" $preset --rooms 50 --late 10 --duration "$duration" "$@"
    step "$tag-50-late10-gap1000" --feed "$feed" $preset --rooms 50 --late 10 --late-gap 1000 \
         --duration "$duration" "$@"
  done
done
grep -h '^SUMMARY' "$out"/*.txt

#!/bin/sh
# Runs the ringback bench (issue 10) from an existing meson build dir (it
# builds nothing: `ninja -C build` builds bench/ringback-bench by default)
# and prints the figures; each step starts only once the machine is idle
# (co-tenant builds and tests wreck the tails on a 2-core VM).
#   bench/ringback/run.sh [BUILD_DIR] [OUT_DIR] [DURATION] ["CALLERS..."] [SWITCHES]
# e.g. bench/ringback/run.sh build /tmp/ringback-results 20 "500 1000" 200
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=${2:-/tmp/ringback-results}
duration=${3:-20}
callers=${4:-"500 1000"}
switches=${5:-200}
bin="$build/bench/ringback-bench"
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
  echo "== $(date -u +%FT%TZ) ringback-bench $*"
  rc=0
  "$bin" "$@" > "$out/$name.txt" 2>&1 || rc=$?
  cat "$out/$name.txt"
  [ "$rc" -eq 0 ] || { echo "ringback-bench $* failed ($rc)" >&2; exit "$rc"; }
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
for n in $callers; do
  step "pacing-$n" pacing --callers "$n" --duration "$duration"
  step "pacing-$n-sample10" pacing --callers "$n" --duration "$duration" --sample 10
  # the relay thread at nice -10: what co-tenants on its core cost it
  step "pacing-$n-nice" pacing --callers "$n" --duration "$duration" --nice -10
done
step switch-stop switch --switches "$switches"
step switch-stop-bg500 switch --switches "$switches" --background 500
step switch-until-peer switch --switches "$switches" --until-peer
step switch-until-peer-bg500 switch --switches "$switches" --background 500 --until-peer
step switch-until-peer-opus switch --switches "$switches" --until-peer --codec opus
step memory memory
# the same with one malloc arena: the tunes' own bytes, without what the
# streaming threads' arenas keep
export MALLOC_ARENA_MAX=1
step memory-one-arena memory
unset MALLOC_ARENA_MAX

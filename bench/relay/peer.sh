#!/bin/bash
# tandem's relay and the peer's (rtpengine 10.5, userspace, one worker thread),
# one after the other at each call count, under the same load generator:
# each relay pinned to cpu0, the generator on cpu1 (relay-bench's layout).
# Prints one row per call count and the ratio of the call counts each carried
# with < 0.1% loss while the generator sent >= 95% of the nominal load.
#   bench/relay/peer.sh [OUT_DIR] [DURATION] "CALLS..." [relay-bench options, e.g. --sample 10]
# Needs `apt-get install rtpengine-daemon`; rtpengine is started here as
# bench/peer/rtpengine.sh does (ng on 127.0.0.1:2223), with THREADS=1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-/tmp/relay-peer}
duration=${2:-20}
calls=${3:-"1000 1500 2000 2500 3000"}
shift 3 2>/dev/null || shift $#
sample=1
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --sample ] && { j=$((i + 1)); sample=${!j}; }; done
mkdir -p "$out"
command -v rtpengine >/dev/null || { echo "rtpengine not installed (apt-get install rtpengine-daemon)" >&2; exit 2; }
[ -d "$root/build" ] || meson setup "$root/build"
ninja -C "$root/build" bench/relay-bench >/dev/null || exit 1
bin="$out/relay-bench"
cp "$root/build/bench/relay-bench" "$bin"
export RUN="$out/rtpengine"

# idle = under 10% of the machine busy over 3 s (at most ~2 min of waiting)
wait_idle() {
  local u ni s i w q sq st b0 t0 b1 t1
  for _ in $(seq 40); do
    read -r _ u ni s i w q sq st _ < /proc/stat; b0=$((u + ni + s + q + sq)); t0=$((b0 + i + w + st))
    sleep 3
    read -r _ u ni s i w q sq st _ < /proc/stat; b1=$((u + ni + s + q + sq)); t1=$((b1 + i + w + st))
    [ $((100 * (b1 - b0) / (t1 - t0 + 1))) -lt 10 ] && return 0
  done
  echo "machine still busy: running anyway" >&2
}

# "loss% cpu% sent%" of one relay-bench output: the worse direction's loss of
# the relayed calls, the relay's CPU (tandem: its thread; rtpengine: all its
# threads), and what the generator sent of the nominal load (it falls behind
# on this machine from ~1,500 calls: a step it could not load is no result).
summary() {
  awk -v calls="$2" -v d="$duration" -v k="$sample" '
       /^  relay /{for(i=1;i<=NF;i++){ if($i ~ /%$/){v=$i; sub("%","",v); if(v+0>l) l=v+0}
                                        if($i=="A->B" && $(i-1)=="sent") s=$(i+1)}}
       /RELAY THREAD cpu|RTPENGINE cpu/{for(i=1;i<=NF;i++) if($i=="cpu"){c=$(i+1); sub("%","",c)}}
       END{n = int((calls + k - 1) / k) * 50 * d; printf "%.4f %s %.1f", l, c, 100 * s / n}' "$1"
}

best_t=0; best_p=0
printf "%-7s | %-30s | %-30s\n" calls "tandem loss%, cpu%, sent%" "rtpengine loss%, cpu%, sent%"
for n in $calls; do
  wait_idle
  "$bin" --calls "$n" --duration "$duration" "$@" > "$out/tandem-$n.txt" 2>&1
  read -r tl tc ts <<< "$(summary "$out/tandem-$n.txt" "$n")"
  THREADS=1 bash "$root/bench/peer/rtpengine.sh" start >/dev/null || exit 1
  wait_idle
  "$bin" --calls "$n" --duration "$duration" "$@" --rtpengine 127.0.0.1:2223 \
      --rtpengine-pid "$(bash "$root/bench/peer/rtpengine.sh" pid)" > "$out/rtpengine-$n.txt" 2>&1
  bash "$root/bench/peer/rtpengine.sh" stop >/dev/null
  read -r pl pc ps <<< "$(summary "$out/rtpengine-$n.txt" "$n")"
  printf "%-7s | %-30s | %-30s\n" "$n" "$tl, $tc, $ts" "$pl, $pc, $ps"
  awk -v l="$tl" -v s="$ts" 'BEGIN{exit !(l < 0.1 && s >= 95)}' && best_t=$n
  awk -v l="$pl" -v s="$ps" 'BEGIN{exit !(l < 0.1 && s >= 95)}' && best_p=$n
done
echo "most calls with < 0.1% loss (and >= 95% of the nominal load sent) on one pinned core: tandem $best_t, rtpengine $best_p" \
     "(ratio $(awk -v t="$best_t" -v p="$best_p" 'BEGIN{ if (p) printf "%.2f", t/p; else print "n/a" }'))"
echo "outputs in $out"

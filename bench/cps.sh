#!/bin/bash
# Call rate, tandem against the peer (Kamailio 5.6 + rtpengine 10.5, bench/peer/),
# one after the other on the same harness: a SIPp UAC (alice, a trunk-like caller,
# each INVITE digest-authenticated) → the target → a SIPp UAS (bob, registered),
# SDP anchored on the target's relay, no RTP, stepped rates,
# DURATION seconds each, HOLD_MS of hold. tandem runs on config/tandem.conf as it
# ships (logging, session timers and the RTP timeout at their defaults); only the
# listen port, the store path, the users (alice with max-calls for a trunk's
# load: the sample allows 8 calls per caller) and, with PORTS=lo-hi, the media
# port range differ. Reports per rate completed/failed calls, calls refused with 503
# (overload shedding: "shed"), CPU of the target (kamailio: all its processes
# plus rtpengine) and of the two SIPp processes, and the set-up time of the
# completed calls (first INVITE to 200, p50/p95/max in ms), CPU ms per call; then, with both, the
# highest rate each carried with < 0.1% of the offered calls failed or shed and
# set-up p95 < 500 ms, and the ratio tandem/peer. Loopback only, bounded by
# -m/timeout.
#   bench/cps.sh [BUILD_DIR] [RATES] [DURATION] [HOLD_MS]
#   TARGET=tandem|peer|both (both)  PORTS=lo-hi (tandem: the sample's range)
#   TARGET=one|pair|scale: past one machine (bench/netns.sh): one tandem, or two,
#   each in a network namespace, behind Kamailio's dispatcher; scale runs one
#   then pair and prints the ratio pair/one (root: ip netns).
#   OVERLOAD_LAG=MS ([sip] overload-lag; 0: no shedding)
#   PIN=1: the target on cpu0, both SIPps on cpu1, for both targets alike
#   (bench/lib.sh).
#   WINDOW=a-b: also the target's CPU per call between a and b seconds into each
#   rate, once calls arrive, end and their transactions expire (Sofia keeps a
#   sent INVITE 32 s) at the same pace: a > hold + 35 s, b <= DURATION.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
rates=${2:-"500 750 1000 1500 2000"}
duration=${3:-10}
hold=${4:-1000}
target=${TARGET:-both}
window=${WINDOW:-}   # a-b: also CPU per call between a and b s into each rate (steady state)
port=5360
work=$(mktemp -d /tmp/tandem-bench-cps.XXXXXX)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
hz=$(getconf CLK_TCK)
sip_addr=127.0.0.1   # where SIPp sends and binds
. "$here/netns.sh"
. "$here/lib.sh"

# The sample configuration with the bench's port, store and users.
tandem_conf() {
  sed -e "s|^listen = [^ ]*|listen = 127.0.0.1:$port|" \
      -e "s|^path = tandem.db|path = $work/tandem.db|" \
      ${PORTS:+-e "s|^ports = [^ ]*|ports = $PORTS|"} \
      ${OVERLOAD_LAG:+-e "s|^overload-lag = [^ ]*|overload-lag = $OVERLOAD_LAG|"} \
      "$root/config/tandem.conf" | sed '/^\[user /,$d'
  printf '[user alice]\npassword = bench\nmax-calls = 100000\n[user bob]\npassword = bench\n'
}

pids=()        # the target's processes, for CPU
start_target() {
  case $1 in
  tandem)
    tandem_conf > "$work/tandem.conf"
    ln -sfn "$root/config/tunes" "$work/tunes"
    "${target_cpu[@]}" "$build/b2bua/tandem" -c "$work/tandem.conf" 2> "$work/tandem.log" &
    pids=($!)
    sleep 1 ;;
  peer)
    RUN=$work/rtpengine start_or_fail "${target_cpu[@]}" bash "$here/peer/rtpengine.sh" start
    RUN=$work/kamailio start_or_fail "${target_cpu[@]}" bash "$here/peer/kamailio.sh" start \
      -A WITH_RTPENGINE -A WITH_REGISTRAR -A WITH_AUTH -A LISTEN=udp:127.0.0.1:$port
    pids=($(cat "$work/rtpengine/rtpengine.pid") $(cat "$work/kamailio/kamailio.pid"))
    pids+=($(pgrep -P "${pids[1]}" | tr '\n' ' ')) ;;
  one) pids=(); netns_start 1 ;;
  pair) pids=(); netns_start 2 ;;
  esac
}

stop_target() {
  kill "${uas:-}" 2>/dev/null || true
  case $1 in
  tandem) kill "${pids[0]}" 2>/dev/null; wait "${pids[0]}" 2>/dev/null || true ;;
  peer)
    RUN=$work/kamailio bash "$here/peer/kamailio.sh" stop > /dev/null
    RUN=$work/rtpengine bash "$here/peer/rtpengine.sh" stop > /dev/null ;;
  one|pair) netns_stop ;;
  esac
  sleep 1
}
# set +e: stopping what already stopped fails, and must not turn a finished run's status into 1.
trap 'set +e; stop_target tandem 2>/dev/null; stop_target peer 2>/dev/null; ns_down; true' EXIT

ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0))); done; echo $t; }

run_target() {
  local name=$1
  start_target "$name"
  case $name in
  one) netns_register 1 ;;
  pair) netns_register 2 ;;
  *) "${sipp_cpu[@]}" timeout 10 sipp 127.0.0.1:$port -sf "$here/sipp/register-uas.xml" -au bob -ap bench -m 1 \
       -p $((port + 2)) -i 127.0.0.1 -auth_uri pbx.test -nostdin > "$work/reg.out" 2>&1 ;;
  esac
  "${sipp_cpu[@]}" timeout $((duration * 10 + 120)) sipp -sf "$here/sipp/cps-uas.xml" -p $((port + 2)) -i "$sip_addr" \
    -nostdin -bg > "$work/uas.out" 2>&1 || true
  uas=$(pgrep -f "sipp -sf $here/sipp/cps-uas.xml" | head -1)
  echo "== $name (hold $hold ms, $duration s per rate)"
  printf '%-8s %-10s %-8s %-8s %-11s %-10s %-10s %-22s %-12s %s\n' rate completed failed shed cpu uac-cpu \
    uas-cpu 'setup-ms(p50/p95/max)' cpu-ms/call mem-MB
  for rate in $rates; do
    local total=$((rate * duration)) t0 t1 tb te sb se uac ua ub ue t ok failed shed setup
    t0=$(date +%s.%N); tb=$(ticks "${pids[@]}"); sb=$(ticks $uas)
    rm -f "$work"/cps-uac_*_rtt.csv
    (cd "$work" && exec "${sipp_cpu[@]}" timeout $((duration * 4 + hold / 1000 * 2 + 30)) sipp "$sip_addr:$port" \
      -sf "$here/sipp/cps-uac.xml" -au alice -ap bench -i "$sip_addr" -p $((port + 1)) \
      -auth_uri bob@pbx.test -r "$rate" -m "$total" -l $((rate * (4 + hold / 1000) + 100)) -d "$hold" \
      -timeout $((duration * 4 + hold / 1000 * 2 + 20))s -nostdin -trace_stat -stf "$work/stat.csv" \
      -trace_rtt -rtt_freq 1 > "$work/uac.out" 2>&1) &
    uac=$!
    sleep 0.1; ua=$(pgrep -P $uac | head -1); ub=$(ticks $ua); ue=$ub; wa=; wb=
    while kill -0 $uac 2>/dev/null; do
      # SIPp's ticks only grow; once it has exited they read 0 (no /proc entry)
      t=$(ticks $ua 2>/dev/null || echo 0); [ "$t" -gt "$ue" ] && ue=$t
      if [ -n "$window" ]; then
        el=$(echo "$(date +%s.%N) - $t0" | bc)
        [ -z "$wa" ] && [ "$(echo "$el >= ${window%-*}" | bc)" = 1 ] && wa=$(ticks "${pids[@]}")
        [ -z "$wb" ] && [ "$(echo "$el >= ${window#*-}" | bc)" = 1 ] && wb=$(ticks "${pids[@]}")
      fi
      sleep 0.2
    done
    t1=$(date +%s.%N); te=$(ticks "${pids[@]}"); se=$(ticks $uas)
    ok=$(tail -1 "$work/stat.csv" | cut -d';' -f16)
    failed=$(tail -1 "$work/stat.csv" | cut -d';' -f18)
    # SIPp's last screen: "503 <---- N ..." once per INVITE the scenario
    # accepts it for; those calls end through the ACK path, counted successful.
    shed=$(grep -E '^ *503 <----' "$work/uac.out" | tail -2 | awk '{s += $3} END {print s + 0}')
    ok=$((ok - shed))
    setup=$(cat "$work"/cps-uac_*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' |
            sort -n | awk '{v[NR] = $1}
              function at(q,  i) { i = int(NR * q) + 1; if (i > NR) i = NR; return v[i] }
              END { if (NR) printf "%d/%d/%d", at(0.5), at(0.95), v[NR]; else printf "-" }')
    pct() { echo "scale=1; ($2 - $1) * 100 / $hz / ($t1 - $t0)" | bc; }
    printf '%-8s %-10s %-8s %-8s %-11s %-10s %-10s %-22s %-12s %s\n' "$rate/s" "$ok" "$failed" "$shed" \
      "$(pct $tb $te)%" "$(pct $ub $ue)%" "$(pct $sb $se)%" "$setup" \
      "$( [ $((ok + shed)) -gt 0 ] && echo "scale=2; ($te - $tb) * 1000 / $hz / ($ok + $shed)" | bc || echo -)" \
      "$(pss_mb "${pids[@]}")" \
      | tee -a "$work/$name.rows"
    if [ -n "$window" ]; then
      # the calls SIPp started in the window (a constant rate), against the CPU spent in it
      echo "   steady state, ${window} s: $( [ -n "$wb" ] && echo "scale=2; ($wb - $wa) * 1000 / $hz / ($rate * (${window#*-} - ${window%-*}))" | bc || echo "- (the rate ended first)") CPU ms per call"
    fi
    sleep $((hold / 1000 + 2))
  done
  stop_target "$name"
}

# Highest rate with < 0.1% of the offered calls failed or shed, set-up p95 < 500 ms.
best() {
  awk -v d="$duration" '{ r = $1 + 0; off = r * d; split($8, s, "/")
    if (($3 + $4) * 1000 < off && $2 + 0 >= off * 0.999 && s[2] + 0 < 500 && r > b) b = r }
    END { print b + 0 }' "$work/$1.rows" 2>/dev/null || echo 0
}

case $target in
both) run_target tandem; run_target peer ;;
scale) run_target one; run_target pair ;;
*) run_target "$target" ;;
esac
if [ "$target" = scale ]; then
  b1=$(best one); b2=$(best pair)
  echo "== best rate (< 0.1% failed or shed, set-up p95 < 500 ms): one tandem ${b1}/s, two ${b2}/s," \
    "ratio pair/one $( [ "$b1" -gt 0 ] && echo "scale=2; $b2 / $b1" | bc || echo -)"
fi
if [ "$target" = both ]; then
  bt=$(best tandem); bp=$(best peer)
  echo "== best rate (< 0.1% failed or shed, set-up p95 < 500 ms): tandem ${bt}/s, peer ${bp}/s," \
    "ratio $( [ "$bp" -gt 0 ] && echo "scale=2; $bt / $bp" | bc || echo -)"
  # per call, not per step: past its knee a target that fails calls spends less
  echo "== CPU ms per call (completed or refused), tandem/peer:"
  paste -d' ' "$work/tandem.rows" "$work/peer.rows" |
    awk '{ c1 = $9 + 0; c2 = $19 + 0; printf "   %s %s / %s = %s\n", $1, $9, $19, c2 ? sprintf("%.2f", c1 / c2) : "-" }'
  echo "== memory at each step's end (MB), tandem/peer:"
  paste -d' ' "$work/tandem.rows" "$work/peer.rows" |
    awk '{ printf "   %s %s / %s = %s\n", $1, $10, $20, $20 ? sprintf("%.2f", $10 / $20) : "-" }'
fi
echo "work folder: $work"

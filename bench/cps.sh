#!/bin/bash
# Call rate: SIPp UAC (alice, digest-authenticated INVITE) → tandem → SIPp UAS
# (bob), basic calls with SDP anchored on tandem's relay but no RTP, stepped
# rates, DURATION seconds each. Reports completed/failed calls and CPU of
# tandem and of the two SIPp processes, calls refused with 503 (overload
# shedding: "shed"), and the set-up time of the completed ones (first INVITE
# to 200, p50/p95/max in ms). Loopback only, bounded by -m/timeout.
#   bench/cps.sh [BUILD_DIR] [RATES] [DURATION] [HOLD_MS]
# OVERLOAD_LAG=MS sets [sip] overload-lag (0: no shedding); unset, tandem's
# default applies (and builds without the key run too).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rates=${2:-"250 500 1000 1500 2000"}
duration=${3:-10}
hold=${4:-0}
port=5360
work=$(mktemp -d /tmp/tandem-bench-cps.XXXXXX)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cat > "$work/tandem.conf" <<CONF
[sip]
${OVERLOAD_LAG:+overload-lag = $OVERLOAD_LAG}
listen = 127.0.0.1:$port
domain = pbx.test
[media]
address = 127.0.0.1
ports = 20000-29999
[store]
path = $work/bench.db
[calls]
rtp-timeout = 0
session-timer = 0
[log]
level = warning
[user alice]
password = alice-secret
[user bob]
password = bob-secret
CONF
"$build/b2bua/tandem" -c "$work/tandem.conf" 2> "$work/tandem.log" &
pid=$!
trap 'kill $pid $uas 2>/dev/null || true' EXIT
sleep 1
timeout 10 sipp 127.0.0.1:$port -sf "$here/sipp/register-bob.xml" -m 1 -p $((port + 2)) \
  -i 127.0.0.1 -auth_uri pbx.test -nostdin > "$work/reg.out" 2>&1
timeout $((duration * 10 + 60)) sipp -sf "$here/sipp/cps-uas.xml" -p $((port + 2)) -i 127.0.0.1 \
  -nostdin -bg > "$work/uas.out" 2>&1 || true
uas=$(pgrep -f "sipp -sf $here/sipp/cps-uas.xml" | head -1)

ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
printf '%-8s %-10s %-8s %-8s %-11s %-10s %-10s %s\n' rate completed failed shed tandem-cpu uac-cpu \
  uas-cpu 'setup-ms(p50/p95/max)'
for rate in $rates; do
  total=$((rate * duration))
  t0=$(date +%s.%N); tb=$(ticks $pid); sb=$(ticks $uas)
  rm -f "$work"/cps-uac_*_rtt.csv
  (cd "$work" && exec timeout $((duration * 4 + 30)) sipp 127.0.0.1:$port -sf "$here/sipp/cps-uac.xml" -i 127.0.0.1 \
    -p $((port + 1)) -auth_uri bob@pbx.test -r "$rate" -m "$total" -l $((rate * 4 + 100)) -d "$hold" \
    -timeout $((duration * 4 + 20))s -nostdin -trace_stat -stf "$work/stat.csv" \
    -trace_rtt -rtt_freq 1 > "$work/uac.out" 2>&1) &
  uac=$!
  sleep 0.1; ua=$(pgrep -P $uac | head -1); ub=$(ticks $ua); ue=$ub
  while kill -0 $uac 2>/dev/null; do ue=$(ticks $ua 2>/dev/null || echo $ue); sleep 0.2; done
  t1=$(date +%s.%N); te=$(ticks $pid); se=$(ticks $uas)
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
  printf '%-8s %-10s %-8s %-8s %-11s %-10s %-10s %s\n' "$rate/s" "$ok" "$failed" "$shed" \
    "$(pct $tb $te)%" "$(pct $ub $ue)%" "$(pct $sb $se)%" "$setup"
  sleep 2
done
echo "calls in CDR table: $(sqlite3 "$work/bench.db" 'select count(*) from cdrs')"

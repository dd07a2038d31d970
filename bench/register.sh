#!/bin/bash
# Registration rate: SIPp registers users (401 challenge + authenticated
# REGISTER, binding written to SQLite before the 200) at stepped rates for
# DURATION seconds each. Reports completed/failed registrations and tandem's
# CPU per step. Loopback only, every run bounded by -m and timeout.
#   bench/register.sh [BUILD_DIR] [RATES] [DURATION] [SYNC: normal|full]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rates=${2:-"500 1000 2000 3000"}
duration=${3:-10}
sync=${4:-normal}
users=2000
port=5260
work=$(mktemp -d /tmp/tandem-bench-reg.XXXXXX)
trap 'kill $pid 2>/dev/null || true' EXIT

{
  printf '[sip]\nlisten = 127.0.0.1:%s\ndomain = pbx.test\n' $port
  printf '[store]\npath = %s/bench.db\nsynchronous = %s\n' "$work" "$sync"
  printf '[log]\nlevel = warning\n'
  for i in $(seq 1 $users); do printf '[user u%s]\npassword = p%s\n' $i $i; done
} > "$work/tandem.conf"
{ echo SEQUENTIAL; for i in $(seq 1 $users); do echo "u$i;[authentication username=u$i password=p$i]"; done; } > "$work/users.csv"

"$build/b2bua/tandem" -c "$work/tandem.conf" 2> "$work/tandem.log" &
pid=$!
sleep 1
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)

printf '%-8s %-10s %-8s %-10s %-12s\n' rate completed failed tandem-cpu rcvbuf-errors
for rate in $rates; do
  total=$((rate * duration))
  before=$(ticks); t0=$(date +%s.%N)
  errs0=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
  timeout $((duration * 3 + 20)) sipp 127.0.0.1:$port -sf "$here/sipp/register.xml" -inf "$work/users.csv" \
    -i 127.0.0.1 -p $((port + 1)) -auth_uri pbx.test -r "$rate" -m "$total" -l $((rate * 2)) \
    -timeout $((duration * 3 + 10))s -nostdin -trace_stat -stf "$work/stat.csv" \
    > "$work/sipp.out" 2>&1 || true
  after=$(ticks); t1=$(date +%s.%N)
  errs1=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
  ok=$(tail -1 "$work/stat.csv" | cut -d';' -f16)
  failed=$(tail -1 "$work/stat.csv" | cut -d';' -f18)
  cpu=$(echo "scale=1; ($after - $before) * 100 / $hz / ($t1 - $t0)" | bc)
  printf '%-8s %-10s %-8s %-10s %-12s\n' "$rate/s" "$ok" "$failed" "$cpu%" $((errs1 - errs0))
done

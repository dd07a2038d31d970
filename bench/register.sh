#!/bin/bash
# Registration rate: SIPp registers users (401 challenge + authenticated
# REGISTER, binding written to SQLite before the 200) at stepped rates for
# DURATION seconds each. Reports completed/failed registrations and tandem's
# CPU per step. Loopback only, every run bounded by -m and timeout.
#   bench/register.sh [BUILD_DIR] [RATES] [DURATION] [SYNC: normal|full] [TRANSPORT: udp|tls]
# tls: tandem gets a tls-listen (a certificate made here); Debian's SIPp has
# no TLS, so SIPp runs over one TCP connection (-t t1) into socat, which
# holds one TLS connection to tandem: registrations over TLS, without a
# handshake each (phones keep their connection). socat's CPU is not tandem's.
# TARGET=peer measures the peer's registrar instead, on the same harness:
# Kamailio 5.6 (bench/peer/kamailio.cfg -A WITH_REGISTRAR -A WITH_AUTH:
# usrloc in memory, any user with password "bench"), CPU of all its
# processes; UDP only. tandem logs at its default level ([log] unset).
# SIP_EXTRA='key = value\n...' adds lines to tandem's [sip] group (to compare
# a setting against its default, e.g. transaction-lifetime = 32).
# PIN=1: the target on cpu0, SIPp on cpu1 (bench/lib.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=${1:-$here/../build}
rates=${2:-"500 1000 2000 3000"}
duration=${3:-10}
sync=${4:-normal}
transport=${5:-udp}
users=2000
port=5260
work=$(mktemp -d /tmp/tandem-bench-reg.XXXXXX)
target=${TARGET:-tandem}
trap 'kill ${pids[*]:-} ${socat_pid:-} 2>/dev/null || true
      [ "$target" = peer ] && RUN=$work/kamailio bash "$here/peer/kamailio.sh" stop > /dev/null; true' EXIT

{
  printf '[sip]\nlisten = 127.0.0.1:%s\ndomain = pbx.test\n%b' $port "${SIP_EXTRA:-}"
  if [ "$transport" = tls ]; then
    printf 'tls-listen = 127.0.0.1:%s\ntls-certificate = cert.pem\ntls-key = key.pem\n' $((port + 2))
  fi
  printf '[store]\npath = %s/bench.db\nsynchronous = %s\n' "$work" "$sync"
  for i in $(seq 1 $users); do printf '[user u%s]\npassword = p%s\n' $i $i; done
} > "$work/tandem.conf"
{ echo SEQUENTIAL; for i in $(seq 1 $users); do
    [ "$target" = peer ] && pw=bench || pw=p$i
    echo "u$i;[authentication username=u$i password=$pw]"; done; } > "$work/users.csv"

sipp_transport=()
scenario="$here/sipp/register.xml"
if [ "$transport" = tls ]; then
  # the Via names TLS, what tandem's end of the connection is (with TCP
  # there, Sofia answers to a TCP port of its own choosing)
  sed 's|SIP/2.0/\[transport\]|SIP/2.0/TLS|' "$scenario" > "$work/register-tls.xml"
  scenario="$work/register-tls.xml"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 2> /dev/null
  socat TCP-LISTEN:$((port + 3)),bind=127.0.0.1,reuseaddr,fork OPENSSL:127.0.0.1:$((port + 2)),verify=0 &
  socat_pid=$!
  sipp_transport=(-t t1 -rsa 127.0.0.1:$((port + 3)))
fi
if [ "$target" = peer ]; then
  RUN=$work/kamailio start_or_fail "${target_cpu[@]}" bash "$here/peer/kamailio.sh" start \
    -A WITH_REGISTRAR -A WITH_AUTH -A LISTEN=udp:127.0.0.1:$port
  pids=($(cat "$work/kamailio/kamailio.pid")); pids+=($(pgrep -P "${pids[0]}" | tr '\n' ' '))
else
  "${target_cpu[@]}" "$build/b2bua/tandem" -c "$work/tandem.conf" 2> "$work/tandem.log" &
  pids=($!)
  sleep 1
fi
ticks() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
hz=$(getconf CLK_TCK)

echo "== $target"
printf '%-8s %-10s %-8s %-10s %-14s %s\n' rate completed failed cpu rcvbuf-errors mem-MB
for rate in $rates; do
  total=$((rate * duration))
  before=$(ticks); t0=$(date +%s.%N)
  errs0=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
  "${sipp_cpu[@]}" timeout $((duration * 3 + 20)) sipp 127.0.0.1:$port -sf "$scenario" -inf "$work/users.csv" \
    -i 127.0.0.1 -p $((port + 1)) "${sipp_transport[@]}" -auth_uri pbx.test -r "$rate" -m "$total" -l $((rate * 2)) \
    -timeout $((duration * 3 + 10))s -nostdin -trace_stat -stf "$work/stat.csv" \
    > "$work/sipp.out" 2>&1 || true
  after=$(ticks); t1=$(date +%s.%N)
  errs1=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
  ok=$(tail -1 "$work/stat.csv" | cut -d';' -f16)
  failed=$(tail -1 "$work/stat.csv" | cut -d';' -f18)
  cpu=$(echo "scale=1; ($after - $before) * 100 / $hz / ($t1 - $t0)" | bc)
  printf '%-8s %-10s %-8s %-10s %-14s %s\n' "$rate/s" "$ok" "$failed" "$cpu%" $((errs1 - errs0)) \
    "$(pss_mb "${pids[@]}")"
done

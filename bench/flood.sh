#!/bin/bash
# Garbage flood (issue 8, item 4): bench/flood/flood.c sends RATE datagrams/s
# of random bytes and mangled SIP full of made-up host names from 127.0.0.1
# for SECONDS s; meanwhile SIPp, from another address (127.0.0.2), registers
# (digest) and sends OPTIONS: LEGIT calls of two requests each, 10 calls/s.
# A request counts as answered when its final response arrives within 4 s
# (SIPp retransmits as a phone does). Reports legit calls answered/sent,
# tandem's CPU and the DNS lookups tandem made (counted by a resolver that
# never answers, when RESOLVER=silent). Loopback only, bounded.
#   bench/flood.sh [BUILD_DIR] [RATE] [SECONDS] [RESOLVER: system|silent]
# RESOLVER=silent (root only) runs tandem in a private mount namespace whose
# /etc/resolv.conf names 127.53.53.53, where a socket counts queries and never
# answers (a dead DNS server); system keeps the machine's resolver.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rate=${2:-10000}
seconds=${3:-10}
resolver=${4:-system}
port=5460
legit=$((seconds * 10))
work=$(mktemp -d /tmp/tandem-bench-flood.XXXXXX)
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT

cc -O2 -o "$work/flood" "$here/flood/flood.c"
cat > "$work/tandem.conf" <<CONF
[sip]
listen = 127.0.0.1:$port
domain = pbx.test
[media]
address = 127.0.0.1
ports = 21000-21999
[store]
path = $work/bench.db
[log]
level = warning
[user u1]
password = p1
CONF
{ echo SEQUENTIAL; echo "u1;[authentication username=u1 password=p1]"; } > "$work/users.csv"

if [ "$resolver" = silent ]; then
  printf 'nameserver 127.53.53.53\noptions timeout:2 attempts:1\n' > "$work/resolv.conf"
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.53.53.53", 53))
s.settimeout(1); n = 0; idle = 0
while idle < '"$((seconds + 30))"':
    try: s.recv(2048); n += 1; open(sys.argv[1], "w").write(str(n))
    except socket.timeout: idle += 1
' "$work/dns-queries" &
  pids+=($!)
  echo 0 > "$work/dns-queries"
  unshare -m sh -c "mount --make-rprivate / && mount --bind '$work/resolv.conf' /etc/resolv.conf &&
    exec '$build/b2bua/tandem' -c '$work/tandem.conf'" 2> "$work/tandem.log" &
else
  "$build/b2bua/tandem" -c "$work/tandem.conf" 2> "$work/tandem.log" &
fi
pid=$!
pids+=($pid)
sleep 1
tpid=$(pgrep -P $pid tandem || echo $pid)   # through unshare's sh when silent
ticks() { awk '{print $14 + $15}' /proc/$tpid/stat; }
hz=$(getconf CLK_TCK)
errs0=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
t0=$(date +%s.%N); c0=$(ticks)

timeout $((seconds + 20)) sipp 127.0.0.1:$port -sf "$here/sipp/flood-legit.xml" -inf "$work/users.csv" \
  -i 127.0.0.2 -p $((port + 1)) -auth_uri pbx.test -r 10 -m $legit -l $legit \
  -recv_timeout 4000 -timeout $((seconds + 15))s -nostdin -trace_stat -stf "$work/stat.csv" \
  > "$work/sipp.out" 2>&1 &
sipp_pid=$!
"$work/flood" $port "$rate" "$seconds" | tee "$work/flood.out"
wait $sipp_pid || true
t1=$(date +%s.%N); c1=$(ticks)
errs1=$(awk '/^Udp:/ {n++; if (n==2) print $6}' /proc/net/snmp)
ok=$(tail -1 "$work/stat.csv" | cut -d';' -f16)
failed=$(tail -1 "$work/stat.csv" | cut -d';' -f18)
cpu=$(echo "scale=1; ($c1 - $c0) * 100 / $hz / ($t1 - $t0)" | bc)
dns=$([ "$resolver" = silent ] && cat "$work/dns-queries" || echo "n/a")
printf 'legit calls (REGISTER+OPTIONS) answered: %s of %s (%s failed) = %s%%\n' "$ok" "$legit" "$failed" \
  "$(echo "scale=1; $ok * 100 / $legit" | bc)"
printf 'tandem CPU %s%%, UDP rcvbuf errors %s, DNS queries from tandem: %s\n' "$cpu" \
  $((errs1 - errs0)) "$dns"
echo "work folder: $work"

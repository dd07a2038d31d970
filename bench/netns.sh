# Sourced by bench/cps.sh for TARGET=one|pair|scale: tandems each in a
# network namespace of its own, behind Kamailio's dispatcher (bench/peer/
# dispatcher.cfg) in the machine's own namespace, where SIPp runs too.
#   tandem k (1, 2): namespace tdbench$k, veth tdb$k (10.77.k.1, outside) <->
#   tdb${k}n (10.77.k.2, inside, default route via 10.77.k.1), SIP on
#   10.77.k.2:5060, media on 10.77.k.2. Kamailio on 10.77.1.1:$port, the SIPp
#   UAC and UAS on 10.77.1.1 too: every address outside is reachable from
#   both namespaces through their default routes.
# Only addresses of namespaces created here are used; all are removed on exit.

ns_addr_out() { echo "10.77.$1.1"; }
ns_addr_in() { echo "10.77.$1.2"; }

ns_up() {
  local k=$1
  ip netns del "tdbench$k" 2>/dev/null || true
  ip link del "tdb$k" 2>/dev/null || true
  ip netns add "tdbench$k"
  ip link add "tdb$k" type veth peer name "tdb${k}n"
  ip link set "tdb${k}n" netns "tdbench$k"
  ip addr add "$(ns_addr_out "$k")/24" dev "tdb$k"
  ip link set "tdb$k" up
  ip netns exec "tdbench$k" ip addr add "$(ns_addr_in "$k")/24" dev "tdb${k}n"
  ip netns exec "tdbench$k" ip link set lo up
  ip netns exec "tdbench$k" ip link set "tdb${k}n" up
  ip netns exec "tdbench$k" ip route add default via "$(ns_addr_out "$k")"
}

ns_down() {
  local k
  for k in 1 2; do
    ip netns del "tdbench$k" 2>/dev/null || true
    ip link del "tdb$k" 2>/dev/null || true
  done
}

# Starts N tandems (1 or 2) and the dispatcher; sets pids (for CPU) and sip_addr.
netns_start() {
  local n=$1 k
  : > "$work/dispatcher.list"
  ns_up 1   # the outside addresses live on tdb1 even for one tandem
  for k in $(seq "$n"); do
    [ "$k" = 1 ] || ns_up "$k"
    tandem_conf | sed -e "s|^listen = [^ ]*|listen = $(ns_addr_in "$k"):5060|" \
                      -e "s|^address = [^ ]*|address = $(ns_addr_in "$k")|" \
                      -e "s|^path = [^ ]*|path = $work/tandem$k.db|" > "$work/tandem$k.conf"
    ip netns exec "tdbench$k" "$build/b2bua/tandem" -c "$work/tandem$k.conf" 2> "$work/tandem$k.log" &
    pids+=($!)
    echo "1 sip:$(ns_addr_in "$k"):5060" >> "$work/dispatcher.list"
  done
  ln -sfn "$root/config/tunes" "$work/tunes"
  RUN=$work/kamailio bash "$here/peer/kamailio.sh" stop > /dev/null 2>&1 || true
  # kamailio.sh runs bench/peer/kamailio.cfg; the dispatcher has its own config
  kamailio -f "$here/peer/dispatcher.cfg" -DD -E -m 512 -M 16 -u root -g root \
    -A "LISTEN=udp:$(ns_addr_out 1):$port" -A "DSLIST=\"$work/dispatcher.list\"" \
    > "$work/dispatcher.log" 2>&1 &
  dispatcher_pid=$!
  sleep 2
  kill -0 "$dispatcher_pid" 2>/dev/null || { echo "dispatcher failed:"; tail "$work/dispatcher.log"; exit 1; }
  pids+=("$dispatcher_pid" $(pgrep -P "$dispatcher_pid" | tr '\n' ' '))
  sip_addr=$(ns_addr_out 1)
}

# bob's one UAS, registered with every tandem (a call reaches either).
netns_register() {
  local n=$1 k
  for k in $(seq "$n"); do
    timeout 10 sipp "$(ns_addr_in "$k"):5060" -sf "$here/sipp/register-uas.xml" -au bob -ap bench -m 1 \
      -p $((port + 2)) -i "$sip_addr" -auth_uri pbx.test -nostdin > "$work/reg$k.out" 2>&1 ||
      { echo "bob could not register with tandem $k:"; tail -5 "$work/reg$k.out"; exit 1; }
  done
}

netns_stop() {
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null || true
  sleep 1
  pids=()
  ns_down
}

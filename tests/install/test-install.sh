#!/bin/sh
# `meson install --destdir` into a temporary folder, then the installed
# tandem checks the installed configuration: it must find its plugins and
# its hold music with no help (no TANDEM_PLUGIN_DIR, any working folder),
# also after the whole tree is moved, and the systemd unit must name the
# installed binary and configuration. A reinstall keeps an edited config.
# Env (tests/install/meson.build): MESON, BUILD_ROOT, PREFIX, BINDIR,
# CONFDIR, PLUGINDIR, UNITDIR (absolute install paths).
set -eu
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset TANDEM_PLUGIN_DIR
fails=0
fail () { echo "not ok: $*"; fails=$((fails + 1)); }

dest="$tmp/dest"
"$MESON" install -C "$BUILD_ROOT" --destdir "$dest" --no-rebuild --quiet > "$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; echo "not ok: meson install failed"; exit 1; }

# $1: the install root (the destdir, or where it was moved), $2: prefix there.
check_installed () {
  root=$1 prefix=$2
  out="$tmp/check.out"
  (cd / && G_MESSAGES_DEBUG=all "$root$BINDIR/tandem" --check-config "$root$CONFDIR/tandem.conf") \
    > "$out" 2>&1 || { cat "$out"; fail "installed tandem --check-config under $root"; return; }
  grep -q "plugins from $root$PLUGINDIR " "$out" || { cat "$out"; fail "plugins not from $root$PLUGINDIR"; }
  grep -q "music on hold: $root$CONFDIR/tunes/hold-music.wav" "$out" \
    || { cat "$out"; fail "hold music not from $root$CONFDIR/tunes"; }
}
check_installed "$dest" "$PREFIX"

# The unit runs the installed binary on the installed configuration, and the
# configuration keeps its store where the unit lets tandem write.
unit="$dest$UNITDIR/tandem.service"
[ -f "$unit" ] || fail "no unit at $unit"
grep -qx "ExecStart=$BINDIR/tandem --config $CONFDIR/tandem.conf" "$unit" \
  || { grep Exec "$unit"; fail "unit ExecStart is not $BINDIR/tandem --config $CONFDIR/tandem.conf"; }
grep -qx "ExecStartPre=$BINDIR/tandem --check-config $CONFDIR/tandem.conf" "$unit" \
  || fail "unit ExecStartPre does not check $CONFDIR/tandem.conf"
grep -qx "StateDirectory=tandem" "$unit" || fail "unit has no StateDirectory=tandem"
sed -n '/^\[store\]/,/^\[/p' "$dest$CONFDIR/tandem.conf" | grep -q '^path = /var/lib/tandem/tandem.db' \
  || fail "installed [store] path is not in /var/lib/tandem (the unit's StateDirectory)"

# systemd's own reading of the unit, where it can run (no systemd as init
# is fine: only settings it cannot parse count).
if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify "$unit" > "$tmp/verify.log" 2>&1 || true
  if grep -Ei "unknown (key|section)|failed to parse|bad unit file|invalid" "$tmp/verify.log"; then
    fail "systemd-analyze verify $unit"
  fi
fi

# A reinstall leaves the operator's configuration alone.
echo "# edited by the operator" >> "$dest$CONFDIR/tandem.conf"
"$MESON" install -C "$BUILD_ROOT" --destdir "$dest" --no-rebuild --quiet > "$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; fail "second meson install failed"; }
tail -n 1 "$dest$CONFDIR/tandem.conf" | grep -q "edited by the operator" \
  || fail "a reinstall overwrote the configuration"

# A configuration from before plugins had groups of their own, as an
# upgrade keeps it: its [media] hold-music still plays, with a warning that
# names the file and line and the new spelling, [hold] music.
old="$dest$CONFDIR/old.conf"
sed -e '/^\[hold\]/,/^music = /d' -e 's|^\[media\]$|[media]\nhold-music = tunes/hold-music.wav|' \
  "$dest$CONFDIR/tandem.conf" > "$old"
line=$(grep -n '^hold-music = ' "$old" | cut -d: -f1)
(cd / && G_MESSAGES_DEBUG=tandem-hold "$dest$BINDIR/tandem" --check-config "$old") > "$tmp/old.out" 2>&1 \
  || { cat "$tmp/old.out"; fail "--check-config of an old-style configuration"; }
grep -q "music on hold: $dest$CONFDIR/tunes/hold-music.wav" "$tmp/old.out" \
  || { cat "$tmp/old.out"; fail "old-style [media] hold-music not loaded"; }
grep -qF "$old:$line: [media] hold-music is deprecated: write it as [hold] music" "$tmp/old.out" \
  || { cat "$tmp/old.out"; fail "no deprecation warning naming $old:$line"; }
rm -f "$old"

# The tree moved elsewhere as a whole still finds its plugins.
mv "$dest" "$tmp/moved"
check_installed "$tmp/moved" "$PREFIX"

if [ $fails -eq 0 ]; then echo "ok: installed tandem finds its plugins and tunes"; fi
exit $((fails > 0))

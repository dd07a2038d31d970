#!/bin/sh
# meson install script: put the sample configuration in place unless the
# operator already has one there (meson install would overwrite it).
# $1: the generated file, $2: the configuration folder (absolute).
set -eu
dest="${DESTDIR:-}$2"
mkdir -p "$dest"
if [ -e "$dest/tandem.conf" ]; then
  echo "Keeping $dest/tandem.conf (the sample is $1)"
else
  install -m 0644 "$1" "$dest/tandem.conf"
  echo "Installing $dest/tandem.conf"
fi

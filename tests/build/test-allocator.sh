#!/bin/bash
# The daemon's malloc is tcmalloc when built with it (meson option allocator):
# the dynamic linker binds every caller's malloc, libc's and Sofia's included,
# to libtcmalloc_minimal, and none to libc's own. Fails when the link drops
# the library (--as-needed) or orders it after libc.
set -euo pipefail
bindings=$(LD_DEBUG=bindings "$1" --version 2>&1 > /dev/null | grep "normal symbol \`malloc'" || true)
to_tcmalloc=$(grep -c "libtcmalloc_minimal[^:]*: normal symbol" <<< "$bindings" || true)
to_libc=$(grep -c "to [^ ]*/libc\.so[^:]*: normal symbol" <<< "$bindings" || true)
echo "malloc bound to tcmalloc: $to_tcmalloc, to libc: $to_libc"
[ "$to_tcmalloc" -gt 0 ] && [ "$to_libc" -eq 0 ]

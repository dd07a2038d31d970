# Helpers the bench scripts share (sourced).

# Memory of processes in MB: the sum of their Pss, so that memory they share
# (Kamailio's shared memory across its processes) is counted once.
pss_mb() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
    t=$((t + ${v:-0}))
  done
  echo $((t / 1024))
}

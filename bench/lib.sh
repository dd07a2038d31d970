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

# PIN=1: the target (every process and thread) on cpu0, SIPp on cpu1.
# Unpinned, the target and SIPp contend for this machine's two cores, and
# tandem's SIP thread waits for a core in bursts (bench/RESULTS.md,
# 2026-12-04). Prefixes: "${target_cpu[@]}" command..., "${sipp_cpu[@]}" sipp...
target_cpu=(); sipp_cpu=()
if [ -n "${PIN:-}" ]; then target_cpu=(taskset -c 0); sipp_cpu=(taskset -c 1); fi

# Run a peer's start script; its failure (e.g. the port still held by a
# tandem just stopped) is on its stdout: shown, and the bench stops.
start_or_fail() {
  "$@" > "$work/start.out" || { cat "$work/start.out" >&2; exit 1; }
}

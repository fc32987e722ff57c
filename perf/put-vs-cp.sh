#!/usr/bin/env bash
# put of a 256 MiB file into a fresh map vs cp of the same file: median of 3 runs each.
# The put includes opening the map, streaming 1 MiB chunks, CRCs, metadata commits and the final
# checkpoint (no image re-encoding: pixels are written in place). Usage: bash perf/put-vs-cp.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${1:-256}"
work="$(mktemp -d "${TMPDIR:-/tmp}/imapfs-perf-XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [ -f dist/cli/main.js ]; then cli=(node bin/imapfs); else cli=(node --require tsx/cjs src/cli/main.ts); fi
head -c "$((mib << 20))" /dev/urandom > "$work/src.bin"
sync
median() { sort -n | sed -n 2p; }
now() { date +%s.%N; }
put_times=(); cp_times=()
for run in 1 2 3; do
  rm -f "$work"/map.png*
  "${cli[@]}" mkfs "$work/map.png" --size "$((mib + 16))M" >/dev/null
  t0=$(now); "${cli[@]}" put "$work/map.png" "$work/src.bin" /file.bin >/dev/null; t1=$(now)
  put_times+=("$(echo "$t1 - $t0" | bc)")
  rm -f "$work/copy.bin"
  t0=$(now); cp "$work/src.bin" "$work/copy.bin"; sync -f "$work/copy.bin"; t1=$(now)
  cp_times+=("$(echo "$t1 - $t0" | bc)")
done
put_med=$(printf '%s\n' "${put_times[@]}" | median)
cp_med=$(printf '%s\n' "${cp_times[@]}" | median)
pngcheck -q "$work/map.png" && echo "pngcheck: ok"
echo "put ${mib} MiB: runs ${put_times[*]} s, median ${put_med} s ($(echo "scale=1; $mib / $put_med" | bc) MiB/s)"
echo "cp  ${mib} MiB (+sync): runs ${cp_times[*]} s, median ${cp_med} s ($(echo "scale=1; $mib / $cp_med" | bc) MiB/s)"
echo "ratio put/cp: $(echo "scale=2; $put_med / $cp_med" | bc)"

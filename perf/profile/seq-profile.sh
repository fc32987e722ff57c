#!/usr/bin/env bash
# CPU profile of the imapfs daemon on sequential 1 MiB write and read (issue 4/5 follow-up:
# where does imapfs lose against the null ceiling?). Two foreground mounts under
# `node --cpu-prof`, one per phase, so the profiles do not mix:
#   1. mount a fresh map, dd SIZE_MIB MiB in (bs=1M, conv=fsync), umount;
#   2. mount it again, drop the page cache, dd it out, umount.
# perf/profile/worker-prof.js makes the actor worker threads write profiles too. Then
# perf/profile/top-self.js prints the top self-time functions per thread and overall.
# Usage: bash perf/profile/seq-profile.sh [SIZE_MIB] [OUT_DIR]   (root, built dist/)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SIZE_MIB="${1:-256}"
OUT="${2:-$ROOT/perf/results/profile-$(date +%Y%m%d-%H%M%S)}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/imapfs-profile-XXXXXX")"
MAP="$WORK/m.png"; MNT="$WORK/mnt"; mkdir -p "$MNT" "$OUT/write" "$OUT/read"
CLI="$ROOT/dist/cli/main.js"
pid=""
cleanup() {
  if mountpoint -q "$MNT"; then node "$CLI" umount "$MNT" >/dev/null 2>&1 || fusermount3 -uz "$MNT" || true; fi
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

mount_profiled() { # $1: profile dir
  PROF_DIR="$1" node --cpu-prof --cpu-prof-dir="$1" -r "$ROOT/perf/profile/worker-prof.js" \
    "$CLI" mount "$MAP" "$MNT" --foreground 2>"$1/daemon.log" &
  pid=$!
  for _ in $(seq 1 300); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
  echo "mount did not come up; see $1/daemon.log" >&2; exit 1
}
umount_profiled() {
  node "$CLI" umount "$MNT"
  wait "$pid"; pid=""
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
node "$CLI" mkfs "$MAP" --size $(( (2 * SIZE_MIB + 256) ))M >/dev/null

mount_profiled "$OUT/write"
echo "write: $(dd if=/dev/zero of="$MNT/f" bs=1M count="$SIZE_MIB" conv=fsync 2>&1 | tail -1)"
node "$CLI" stats "$MNT" --json >"$OUT/write/stats.json"
umount_profiled

mount_profiled "$OUT/read"
sync; echo 3 >/proc/sys/vm/drop_caches
echo "read:  $(dd if="$MNT/f" of=/dev/null bs=1M 2>&1 | tail -1)"
node "$CLI" stats "$MNT" --json >"$OUT/read/stats.json"
umount_profiled
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

for phase in write read; do
  echo; echo "=== $phase ==="
  node "$ROOT/perf/profile/top-self.js" --top 12 "$OUT/$phase"/*.cpuprofile
done | tee "$OUT/top-self.txt"
echo "profiles and summary in $OUT"

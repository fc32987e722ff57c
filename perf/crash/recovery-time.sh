#!/usr/bin/env bash
# Recovery time after a crash with 64 MiB of changes not folded into the PNG (the "journal": no
# checkpoint since they were written), against the open of the same map after a clean unmount.
# The daemon is SIGKILLed after the fsync'd writes; the next mount's open (recovery: checksum repair
# of the dirty container, sidecar check, reconciliation, closing checkpoint) is timed by the daemon
# (stats.recovery.ms) and from outside (the whole `imapfs mount`). With the intent log the checksum
# repair reads only the blocks of the regions written since the last checkpoint (blocksRead of
# blocks); without it (MAP.png.intents deleted before the remount: NO_INTENTS=1), all of them.
#   perf/crash/recovery-time.sh [REPS=3] [MAP_SIZE=256M] [DATA_MIB=64]
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${1:-3}"; size="${2:-256M}"; data_mib="${3:-64}"
work="$(mktemp -d /tmp/imapfs-recovery-XXXXXX)"; mnt="$work/mnt"; map="$work/map.png"; mkdir -p "$mnt"
cleanup() { node bin/imapfs umount "$mnt" >/dev/null 2>&1 || fusermount3 -uz "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
now() { date +%s.%N; }
# Prints: open ms, clean|dirty, and for a recovery its scope (intents|full) and blocks read/of.
stat_ms() { node bin/imapfs stats "$mnt" --json | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); const r=j.recovery.recovered; console.log(j.recovery.ms.toFixed(1), r ? "dirty" : "clean", r ? r.scope : "-", r ? r.blocksScanned : 0, r ? r.blockCount : 0)'; }
for rep in $(seq "$reps"); do
  rm -f "$map" "$map".*
  node bin/imapfs mkfs "$map" --size "$size" >/dev/null
  pid=$(node bin/imapfs mount "$map" "$mnt" --json -o journal.checkpoint_interval_s=3600 -o journal.checkpoint_bytes=1G | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).pid)')
  for i in $(seq "$data_mib"); do dd if=/dev/urandom of="$mnt/f$i" bs=1M count=1 conv=fsync status=none; done
  kill -9 "$pid"; sleep 0.5; fusermount3 -uz "$mnt" 2>/dev/null || true
  [ "${NO_INTENTS:-0}" = 1 ] && rm -f "$map.intents"
  t0=$(now); node bin/imapfs mount "$map" "$mnt" >/dev/null; t1=$(now)
  read -r crash_open_ms state scope scanned blocks < <(stat_ms)
  node bin/imapfs umount "$mnt" >/dev/null
  t2=$(now); node bin/imapfs mount "$map" "$mnt" >/dev/null; t3=$(now)
  read -r clean_open_ms clean_state _ _ _ < <(stat_ms)
  node bin/imapfs umount "$mnt" >/dev/null
  pngcheck -q "$map"
  echo "{\"rep\":$rep,\"afterCrash\":{\"openMs\":$crash_open_ms,\"state\":\"$state\",\"scope\":\"$scope\",\"blocksRead\":$scanned,\"blocks\":$blocks,\"mountS\":$(awk "BEGIN{print $t1 - $t0}")},\"afterClean\":{\"openMs\":$clean_open_ms,\"state\":\"$clean_state\",\"mountS\":$(awk "BEGIN{print $t3 - $t2}")},\"load\":$(cut -d' ' -f1 /proc/loadavg)}"
done

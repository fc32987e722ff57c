#!/usr/bin/env bash
# A 1 GiB file written with dd and read back with cp through an imapfs mount, compared byte for
# byte, with the daemon's memory (VmRSS idle after mount, VmHWM after) under small budgets.
# Prints one JSON line. Usage: perf/streaming/stream-1g.sh [SIZE_MIB] [CONFIG.yaml]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib="${1:-1024}"
work="$(mktemp -d /tmp/imapfs-stream-XXXXXX)"
cfg="${2:-$work/budgets.yaml}"
[ -n "${2:-}" ] || printf 'cache: { l1_bytes: 16M, l2_bytes: 16M }\nio: { max_dirty_bytes: 16M }\n' > "$cfg"
mnt="$work/mnt"; map="$work/map.png"; mkdir -p "$mnt"
cleanup() { node bin/imapfs umount "$mnt" >/dev/null 2>&1 || fusermount3 -uz "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

dd if=/dev/urandom of="$work/src" bs=1M count="$size_mib" status=none
want=$(sha256sum < "$work/src" | cut -d' ' -f1)
node bin/imapfs mkfs "$map" --size "$((size_mib + 256))M" >/dev/null
node bin/imapfs mount "$map" "$mnt" --config "$cfg" >/dev/null
pid=$(node bin/imapfs stats "$mnt" --json | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).pid))')
sleep 0.5
idle_kb=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")

t0=$(date +%s.%N)
dd if="$work/src" of="$mnt/big" bs=1M conv=fsync status=none
t1=$(date +%s.%N)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
cp "$mnt/big" "$work/back"
t2=$(date +%s.%N)
got=$(sha256sum < "$work/back" | cut -d' ' -f1)
peak_kb=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
node bin/imapfs umount "$mnt" >/dev/null
pngcheck -q "$map" && png=ok || png=fail

node -e '
const [size, t0, t1, t2, idle, peak, want, got, png, cfg] = process.argv.slice(1);
const mib = Number(size);
console.log(JSON.stringify({
  sizeMiB: mib,
  writeMBps: +((mib * 1.048576) / (t1 - t0)).toFixed(1),
  readMBps: +((mib * 1.048576) / (t2 - t1)).toFixed(1),
  identical: want === got,
  idleRssMiB: +(idle / 1024).toFixed(1),
  peakRssMiB: +(peak / 1024).toFixed(1),
  growthMiB: +((peak - idle) / 1024).toFixed(1),
  boundMiB: 16 + 16 + 16 + 64,
  pngcheck: png,
  config: cfg,
}));
' "$size_mib" "$t0" "$t1" "$t2" "$idle_kb" "$peak_kb" "$want" "$got" "$png" "$cfg"
[ "$want" = "$got" ] && [ "$png" = ok ]

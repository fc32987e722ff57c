#!/usr/bin/env bash
# Parallel readers through the scheduler: 1 reader vs 4 readers, each on its own 64 MiB file, with a
# simulated device latency (scheduler.io_delay_ms = 1) and without (0). Every (delay, readers) pair
# gets a fresh mount of the same map (cold page cache) and runs REPS times, interleaved; fio does the
# reading (O_DIRECT, so each read reaches the daemon). The cache actor is shrunk to one slot and
# prefetch is off, so every read is a device read: this measures the scheduler, not the cache.
#
#   perf/scheduler/parallel-readers.sh [REPS=3] [SECONDS=8] > result.json
#   MAX_INFLIGHT=1 perf/scheduler/parallel-readers.sh …   # the same with a serial scheduler
# Prints one JSON document: every run, and per delay the medians and the 4-reader/1-reader ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${1:-3}"; secs="${2:-8}"
work="$(mktemp -d /tmp/imapfs-parallel-XXXXXX)"
mnt="$work/mnt"; map="$work/map.png"; mkdir -p "$mnt"
cleanup() { node bin/imapfs umount "$mnt" >/dev/null 2>&1 || fusermount3 -uz "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
opts=(-o cache.l1_bytes=4K -o cache.l2_bytes=0 -o cache.prefetch.enabled=false)
[ -z "${MAX_INFLIGHT:-}" ] || opts+=(-o "scheduler.max_inflight=$MAX_INFLIGHT")

node bin/imapfs mkfs "$map" --size 512M >/dev/null
node bin/imapfs mount "$map" "$mnt" "${opts[@]}" >/dev/null
for i in 0 1 2 3; do dd if=/dev/urandom of="$mnt/f$i" bs=1M count=64 conv=fsync status=none; done
node bin/imapfs umount "$mnt" >/dev/null

run() { # delay readers pattern rep
  local delay=$1 readers=$2 pattern=$3 bs
  [ "$pattern" = randread ] && bs=4k || bs=1M
  node bin/imapfs mount "$map" "$mnt" "${opts[@]}" -o "scheduler.io_delay_ms=$delay" >/dev/null
  local args=(--output-format=json --ioengine=psync --direct=1 --rw="$pattern" --bs="$bs"
              --time_based --runtime="$secs" --group_reporting --randseed=42)
  for ((j = 0; j < readers; j++)); do args+=(--name="r$j" --filename="$mnt/f$j"); done
  local out; out=$(fio "${args[@]}")
  node bin/imapfs umount "$mnt" >/dev/null
  node -e '
    const [delay, readers, pattern, rep, load] = process.argv.slice(1);
    const j = JSON.parse(require("fs").readFileSync(0, "utf8")).jobs[0].read;
    console.log(JSON.stringify({ delayMs: +delay, readers: +readers, pattern, rep: +rep, load: +load,
      MBps: +(j.bw_bytes / 1e6).toFixed(2), iops: Math.round(j.iops),
      p50us: +((j.clat_ns.percentile?.["50.000000"] ?? 0) / 1000).toFixed(1),
      p99us: +((j.clat_ns.percentile?.["99.000000"] ?? 0) / 1000).toFixed(1) }));
  ' "$delay" "$readers" "$pattern" "$4" "$(cut -d' ' -f1 /proc/loadavg)" <<<"$out"
}

{
  for rep in $(seq "$reps"); do
    for delay in 1 0; do
      for pattern in randread read; do
        for readers in 1 4; do run "$delay" "$readers" "$pattern" "$rep"; done
      done
    done
  done
} > "$work/runs.jsonl"

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const summary = [];
for (const delayMs of [1, 0]) for (const pattern of ["randread", "read"]) {
  const pick = (n) => runs.filter((r) => r.delayMs === delayMs && r.pattern === pattern && r.readers === n);
  const one = median(pick(1).map((r) => r.MBps)), four = median(pick(4).map((r) => r.MBps));
  summary.push({ delayMs, pattern, oneReaderMBps: one, fourReadersMBps: four, ratio: +(four / one).toFixed(2),
    spread: { one: [Math.min(...pick(1).map((r) => r.MBps)), Math.max(...pick(1).map((r) => r.MBps))],
              four: [Math.min(...pick(4).map((r) => r.MBps)), Math.max(...pick(4).map((r) => r.MBps))] } });
}
console.log(JSON.stringify({ generated: new Date().toISOString(), summary, runs }, null, 2));
' "$work/runs.jsonl"

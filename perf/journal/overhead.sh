#!/usr/bin/env bash
# The journal's cost: the same fio write jobs on a fresh map mounted with journaling on (the default)
# and off (journal.enabled=false: no durability barriers; unsafe, for this measurement only),
# interleaved on/off, REPS times; medians and the on/off ratio.
#   perf/journal/overhead.sh [REPS=3] > result.json
# Jobs: 1 MiB sequential write of 256 MiB with a final fsync; 4 KiB random write for 8 s over a
# 64 MiB file with an fsync every 32 writes (so the durable points are part of the job).
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${1:-3}"
work="$(mktemp -d /tmp/imapfs-journal-XXXXXX)"
mnt="$work/mnt"; map="$work/map.png"; mkdir -p "$mnt"
cleanup() { node bin/imapfs umount "$mnt" >/dev/null 2>&1 || fusermount3 -uz "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

run() { # journal(on|off) job rep
  local enabled=true; [ "$1" = off ] && enabled=false
  rm -f "$map" "$map".*
  node bin/imapfs mkfs "$map" --size 768M >/dev/null
  node bin/imapfs mount "$map" "$mnt" -o "journal.enabled=$enabled" >/dev/null
  local args
  if [ "$2" = seqwrite ]; then
    args=(--rw=write --bs=1M --size=256M --end_fsync=1)
  else
    dd if=/dev/zero of="$mnt/f" bs=1M count=64 conv=fsync status=none
    args=(--rw=randwrite --bs=4k --size=64M --time_based --runtime=8 --fsync=32 --randseed=42)
  fi
  local out; out=$(fio --output-format=json --name=j --filename="$mnt/f" --ioengine=psync "${args[@]}")
  node bin/imapfs umount "$mnt" >/dev/null
  node -e '
    const [journal, job, rep, load] = process.argv.slice(1);
    const w = JSON.parse(require("fs").readFileSync(0, "utf8")).jobs[0].write;
    console.log(JSON.stringify({ journal, job, rep: +rep, load: +load, MBps: +(w.bw_bytes / 1e6).toFixed(2), iops: Math.round(w.iops) }));
  ' "$1" "$2" "$3" "$(cut -d' ' -f1 /proc/loadavg)" <<<"$out"
}

{
  for rep in $(seq "$reps"); do
    for job in seqwrite randwrite; do
      for j in on off; do run "$j" "$job" "$rep"; done
    done
  done
} > "$work/runs.jsonl"

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const summary = ["seqwrite", "randwrite"].map((job) => {
  const on = runs.filter((r) => r.job === job && r.journal === "on").map((r) => r.MBps);
  const off = runs.filter((r) => r.job === job && r.journal === "off").map((r) => r.MBps);
  const mOn = median(on), mOff = median(off);
  return { job, journalOnMBps: mOn, journalOffMBps: mOff, overheadPct: +((1 - mOn / mOff) * 100).toFixed(1),
    spread: { on: [Math.min(...on), Math.max(...on)], off: [Math.min(...off), Math.max(...off)] } };
});
console.log(JSON.stringify({ generated: new Date().toISOString(), summary, runs }, null, 2));
' "$work/runs.jsonl"

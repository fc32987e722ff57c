#!/usr/bin/env bash
# Compares the project's FUSE binding with fuse-native 2.2.6 on the same in-memory logic (MemFs),
# in one run: sequential write/read of a 1 GiB file with 1 MiB blocks (fio), 4 KiB random read
# latency (fio, O_DIRECT, queue depth 1), create/s and stat/s (meta.py).
#
#   FUSE_NATIVE_DIR=/tmp/fn-cmp/node_modules/fuse-native bash perf/fuse-binding-compare/compare.sh [RUNS]
#
# Both sides run with entry/attr timeouts 0, so every stat reaches the filesystem (the point is the
# binding's per-request cost), allow_other, and their largest writes (1 MiB here; 128 KiB for
# fuse-native via big_writes,max_write smuggled through fsname). Results: perf/results/fuse-binding-compare-*.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
: "${FUSE_NATIVE_DIR:?set FUSE_NATIVE_DIR to an installed fuse-native@2.2.6 (npm install fuse-native@2.2.6 in a scratch dir)}"
OUT=perf/results/fuse-binding-compare-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RANDREAD_SECONDS=${RANDREAD_SECONDS:-10}

child=""
mp=""
cleanup() {
  if [ -n "$mp" ]; then fusermount3 -uz "$mp" 2>/dev/null || true; rmdir "$mp" 2>/dev/null || true; fi
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  child=""; mp=""
}
trap cleanup EXIT

start() { # $1 = binding|fuse-native
  mp=$(mktemp -d /tmp/imapfs-bench-XXXXXX)
  local log="$OUT/$1.daemon.log"
  if [ "$1" = binding ]; then
    node --require tsx/cjs src/fuse/memfs/main.ts "$mp" -o allow_other,entry_timeout=0,attr_timeout=0 >"$log" 2>&1 &
  else
    FN_TIMEOUT=0 node --require tsx/cjs perf/fuse-binding-compare/fuse-native-memfs.ts "$mp" >"$log" 2>&1 &
  fi
  child=$!
  for _ in $(seq 200); do grep -q ready "$log" && return 0; sleep 0.1; done
  echo "daemon did not start: $(cat "$log")" >&2; exit 1
}

fio_json() { fio --output-format=json --ioengine=psync --iodepth=1 "$@"; }

for run in $(seq "$RUNS"); do
  for b in binding fuse-native; do
    start "$b"
    f="$mp/big"
    fio_json --name=wcold --filename="$f" --rw=write --bs=1M --size=1G >"$OUT/$b.$run.wcold.json"
    fio_json --name=wwarm --filename="$f" --rw=write --bs=1M --size=1G >"$OUT/$b.$run.wwarm.json"
    sync; echo 3 >/proc/sys/vm/drop_caches
    fio_json --name=read --filename="$f" --rw=read --bs=1M --size=1G >"$OUT/$b.$run.read.json"
    fio_json --name=rand --filename="$f" --rw=randread --bs=4k --size=1G --direct=1 \
      --time_based --runtime="$RANDREAD_SECONDS" >"$OUT/$b.$run.rand.json"
    rss=$(ps -o rss= -p "$child" | tr -d ' ')
    python3 perf/fuse-binding-compare/meta.py "$mp" 10000 >"$OUT/$b.$run.meta.txt"
    echo "rss_kib=$rss" >>"$OUT/$b.$run.meta.txt"
    cleanup
    echo "run $run $b done: $(cat "$OUT/$b.$run.meta.txt" | tr '\n' ' ')"
  done
done
python3 perf/fuse-binding-compare/summarize.py "$OUT" | tee "$OUT/summary.md"

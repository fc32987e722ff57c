#!/usr/bin/env bash
# Mounts memfs, runs stress.py (16 threads, 60 s by default) twice in a row on the same mount
# (the second pass shows whether RSS keeps growing), then checks the daemon is alive and unmounts.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-16}; SECONDS_=${2:-60}
mp=$(mktemp -d /tmp/imapfs-stress-XXXXXX)
node --require tsx/cjs src/fuse/memfs/main.ts "$mp" -o allow_other >"$mp.log" 2>&1 &
pid=$!
trap 'fusermount3 -uz "$mp" 2>/dev/null || true; kill $pid 2>/dev/null || true; rmdir "$mp" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q ready "$mp.log" && break; sleep 0.1; done
for pass in 1 2; do
  mkdir "$mp/p$pass"
  python3 perf/fuse-stress/stress.py "$mp/p$pass" "$pid" "$THREADS" "$SECONDS_"
  rm -rf "$mp/p$pass"
done
kill -0 $pid && echo "daemon alive, rss_kib=$(ps -o rss= -p $pid | tr -d ' ')"
fusermount3 -u "$mp"; wait $pid; echo "daemon exit status $?"

#!/usr/bin/env bash
# Runs fsx.py (our fsx) against a fresh mount of memfs (the binding's in-memory example fs) or of
# imapfs, with several seeds, then unmounts; for imapfs it then checks the map with pngcheck and
# `imapfs fsck`. The mount is released on any exit (trap), failures included.
#
#   perf/fsx/run.sh memfs|imapfs [OPS=10000]
# Environment: SEEDS="1 2 3"  FSX_ARGS="extra fsx.py flags"  MEMFS_OPTS="-o option list for memfs"
#              IMAPFS_SIZE=256M  IMAPFS_OPTS="-o options for imapfs mount"
# Prints one JSON line per seed (fsx.py's summary) and a result table; exit 0 only if every seed
# passed (and, for imapfs, pngcheck and fsck are clean). On failure the work directory (map, daemon
# log, FILE.fsxgood/.fsxlog) is kept and its path printed.
set -uo pipefail
cd "$(dirname "$0")/../.."
KIND=${1:-}
OPS=${2:-10000}
SEEDS=${SEEDS:-"1 2 3"}
case "$KIND" in memfs | imapfs) ;; *)
  echo "usage: $0 memfs|imapfs [ops]" >&2
  exit 2
  ;;
esac

work=$(mktemp -d "/tmp/imapfs-fsx-$KIND-XXXXXX")
mnt=$work/mnt
map=$work/m.png
mkdir "$mnt"
pid=
status=0

mounted() { grep -qs " $mnt fuse" /proc/mounts; }

unmount_target() {
  if mounted; then
    if [ "$KIND" = imapfs ]; then
      node bin/imapfs umount "$mnt" || { echo "imapfs umount failed" >&2; status=1; }
    else
      fusermount3 -u "$mnt" || true
    fi
  fi
  if mounted; then
    echo "still mounted: fusermount3 -uz $mnt" >&2
    fusermount3 -uz "$mnt" || true
    status=1
  fi
  if [ -n "$pid" ]; then
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "daemon $pid still alive after unmount: killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
      status=1
    fi
    pid=
  fi
}

on_exit() {
  unmount_target
  if [ "$status" = 0 ]; then
    rm -rf "$work" "$work.log"
  else
    echo "kept $work for inspection" >&2
  fi
}
trap on_exit EXIT
trap 'status=1; exit 1' INT TERM

# ---- mount ----
if [ "$KIND" = memfs ]; then
  if [ -f dist/fuse/memfs/main.js ]; then runner=(node dist/fuse/memfs/main.js)
  else runner=(node --require tsx/cjs src/fuse/memfs/main.ts); fi
  # shellcheck disable=SC2086
  "${runner[@]}" "$mnt" ${MEMFS_OPTS:-} >"$work/memfs.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q ready "$work/memfs.log" && break; sleep 0.1; done
  grep -q ready "$work/memfs.log" || { echo "memfs did not start:" >&2; cat "$work/memfs.log" >&2; status=1; exit 1; }
  echo "memfs: $(head -1 "$work/memfs.log") (pid $pid, ${runner[*]})"
else
  node bin/imapfs mkfs "$map" --size "${IMAPFS_SIZE:-256M}" >/dev/null || { status=1; exit 1; }
  # shellcheck disable=SC2086
  out=$(node bin/imapfs mount "$map" "$mnt" --json ${IMAPFS_OPTS:-}) || { echo "$out" >&2; status=1; exit 1; }
  pid=$(node -e 'console.log(JSON.parse(process.argv[1]).pid)' "$out")
  echo "imapfs: mounted $map on $mnt (pid $pid, size ${IMAPFS_SIZE:-256M})"
fi

# ---- fsx ----
results=()
for seed in $SEEDS; do
  line=$(python3 perf/fsx/fsx.py -q -N "$OPS" -S "$seed" -P "$work" ${FSX_ARGS:-} "$mnt/fsx.$seed" 2> >(tee "$work/fsx.$seed.err" >&2))
  rc=$?
  echo "$line"
  [ "$rc" = 0 ] || status=1
  results+=("$(python3 -c 'import json,sys
j=json.loads(sys.argv[1].strip().splitlines()[-1]) if sys.argv[1].strip() else {}
print("%-7s %6s %8s %6s %9s" % (sys.argv[2], j.get("seed","?"), j.get("ops","?"), j.get("result","?"), j.get("seconds","?")))' "$line" "$KIND")")
  if ! mounted; then echo "the mount is gone after seed $seed" >&2; status=1; break; fi
done
if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then echo "daemon died" >&2; status=1; fi
[ "$KIND" = memfs ] && echo "memfs daemon rss_kib=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')"

# ---- unmount, then check the map ----
unmount_target
if [ "$KIND" = imapfs ]; then
  echo "--- pngcheck"
  pngcheck -v "$map" | tail -3 || status=1
  pngcheck -q "$map" >/dev/null || { echo "pngcheck FAILED" >&2; status=1; }
  echo "--- imapfs fsck"
  node bin/imapfs fsck "$map" || status=1
fi

echo "--- fsx on $KIND, $OPS ops per seed"
printf '%-7s %6s %8s %6s %9s\n' target seed ops result seconds
printf '%s\n' "${results[@]}"
echo "overall: $([ "$status" = 0 ] && echo PASS || echo FAIL)"
exit "$status"

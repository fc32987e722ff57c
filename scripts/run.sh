#!/usr/bin/env bash
# The main job: set up, create the default map if there is none, mount it, show its status.
#   IMAPFS_HOME   where the map and mountpoint live (default ~/imapfs)
#   IMAPFS_SIZE   size of a new map (default 256M; it grows by itself when full)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

home="${IMAPFS_HOME:-$HOME/imapfs}"
map="$home/default.png"
mnt="$home/mnt"
mkdir -p "$mnt"

if [ ! -f "$map" ]; then
  node bin/imapfs mkfs "$map" --size "${IMAPFS_SIZE:-256M}"
fi
if grep -q " $mnt fuse" /proc/mounts; then
  echo "$map is already mounted on $mnt"
else
  node bin/imapfs mount "$map" "$mnt"
fi
echo
node bin/imapfs stats "$mnt"
echo
df -h "$mnt"
echo
echo "Use it: cp -r SOMETHING $mnt/ ; unmount with: node bin/imapfs umount $mnt"

#!/usr/bin/env bash
# Installs what imapfs needs on a fresh Debian machine with Node 20 and npm, then builds it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(fuse3 libfuse3-dev pkg-config pngcheck fio fuse2fs e2fsprogs attr acl rsync util-linux procps python3 make gcc g++)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (builds the FUSE binding and better-sqlite3 from source; about 2 minutes)"
  npm ci --no-audit --no-fund
fi
npm run --silent build

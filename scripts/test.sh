#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite: typecheck, lint, build, then jest through real
# FUSE mounts, real SQLite files and real worker threads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm run --silent lint
mkdir -p tmp
status=0
npx jest --runInBand --json --outputFile=tmp/jest-result.json "$@" || status=$?
node -e '
  const r = require("./tmp/jest-result.json");
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1); }
' || status=1
exit "$status"

#!/usr/bin/env bash
# Fills the suite's toolchain directory ($CLARITY_TOOLCHAIN_DIR, mounted read-only at /toolchain)
# with the pinned node_modules the starter's package.json names: `npm ci` of grader/package-lock.json
# (the grader owns the lockfile; the sandbox has no network). Runs on the host, with network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${CLARITY_TOOLCHAIN_DIR:?set CLARITY_TOOLCHAIN_DIR}
mkdir -p "$dest"
cp "$here/../starter/package.json" "$dest/package.json"
cp "$here/package-lock.json" "$dest/package-lock.json"
cd "$dest"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
# tsx and typescript are what the runs need; fail here rather than in every sandbox.
test -x node_modules/.bin/tsx && test -f node_modules/typescript/bin/tsc
echo "prepared $(ls node_modules | wc -l) packages in $dest/node_modules"

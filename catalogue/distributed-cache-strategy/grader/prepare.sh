#!/usr/bin/env bash
# Fills $CLARITY_TOOLCHAIN_DIR for the distributed-cache-strategy suite: a Go build cache seed
# (standard library and the starter's packages, race-instrumented), copied into $GOCACHE at the
# start of each run by runner/harness/go_test.py. The suite needs no third-party modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
: "${CLARITY_TOOLCHAIN_DIR:?set CLARITY_TOOLCHAIN_DIR}"
mkdir -p "$CLARITY_TOOLCHAIN_DIR"
"$root/runner/go-warm-cache.sh" "$here/../starter" "$CLARITY_TOOLCHAIN_DIR"

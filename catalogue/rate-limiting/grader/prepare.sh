#!/usr/bin/env bash
# Fills $CLARITY_TOOLCHAIN_DIR for the rate-limiting suite (run on the host, with network):
#   gomod/    the starter's modules (go-redis, miniredis and their dependencies, pinned by the
#             starter's go.mod and go.sum), mounted read-only at /toolchain/gomod (GOMODCACHE)
#   gocache/  a Go build cache seed (standard library and those modules, race-instrumented),
#             copied into $GOCACHE at the start of each run by runner/harness/go_test.py
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
: "${CLARITY_TOOLCHAIN_DIR:?set CLARITY_TOOLCHAIN_DIR}"
mkdir -p "$CLARITY_TOOLCHAIN_DIR"
tc=$(cd "$CLARITY_TOOLCHAIN_DIR" && pwd)
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod GOTOOLCHAIN=local
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a "$here/../starter/." "$tmp/"
# `go mod download` of every module in the build list, including test-only dependencies.
(cd "$tmp" && GOMODCACHE="$tc/gomod" GOPATH="$tmp/.gopath" GOCACHE="$tmp/.gocache" go mod download all)
chmod -R a+rX "$tc/gomod"
"$root/runner/go-warm-cache.sh" "$here/../starter" "$tc" GOMODCACHE=/toolchain/gomod

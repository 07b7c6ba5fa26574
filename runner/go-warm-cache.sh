#!/usr/bin/env bash
# Fills <toolchain-dir>/gocache with a Go build cache for a Go grader suite, for its prepare.sh.
#
#   runner/go-warm-cache.sh <starter-dir> <toolchain-dir> [extra env NAME=VALUE...]
#
# A cold `go test -race` of a small net/http package spends ~35 s of this 2-core machine
# compiling the standard library, more than a visible run may take. Go's build cache is
# content-addressed: an entry is keyed by a hash of the toolchain, the flags, the environment
# that matters (GOOS, CGO_ENABLED, CC, ...) and, for packages outside GOROOT, their directory.
# So the seed is built inside a sandbox laid out like the run's (the toolchain directory mounted
# at /toolchain, the same Go environment), by compiling the starter's packages and tests the way
# the visible and hidden commands do. runner/harness/go_test.py copies it into $GOCACHE at the
# start of a run when $CLARITY_GOCACHE_SEED names it; a copied cache only ever gives hits for
# identical inputs, so the worst a stale seed can do is cost compile time.
set -euo pipefail
starter=$(cd "$1" && pwd); tc=$(cd "$2" && pwd); shift 2
envs=()
for kv in "$@"; do envs+=(--setenv "${kv%%=*}" "${kv#*=}"); done
rm -rf "$tc/gocache"
out=$(mktemp -d /tmp/clarity-warm.XXXXXX)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/work" "$out/cache"
cp -a "$starter/." "$out/work/"
bwrap --unshare-all --die-with-parent --new-session \
  --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
  --symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache \
  --proc /proc --dev /dev --tmpfs /tmp \
  --bind "$out/work" /work --bind "$out/cache" /tmp/.gocache --ro-bind "$tc" /toolchain \
  --chdir /work --clearenv \
  --setenv PATH /usr/local/go/bin:/usr/local/bin:/usr/bin:/bin --setenv HOME /tmp \
  --setenv LANG C.UTF-8 --setenv TMPDIR /tmp --setenv GOCACHE /tmp/.gocache \
  --setenv GOPATH /tmp/.gopath --setenv GOPROXY off --setenv GOTOOLCHAIN local \
  --setenv GOFLAGS -mod=mod --setenv NO_COLOR 1 "${envs[@]}" \
  go test -race -count=1 -run '^$' ./...
cp -R "$out/cache" "$tc/gocache"
chmod -R a+rX "$tc/gocache"
du -sh "$tc/gocache"

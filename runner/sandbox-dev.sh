#!/usr/bin/env bash
# Development stand-in for `clarity runner`'s sandbox, for writing and checking grader suites
# without the Rust runner. It applies the same contract (docs/runner.md): a fresh /work owned by
# an unprivileged uid, toolchains read-only, no network but the sandbox's own loopback, services
# started inside by harness/entry.sh, results in $CLARITY_RESULTS.
#
#   runner/sandbox-dev.sh <slug> visible|hidden [overlay-dir]
#
# <slug> is a catalogue folder. The workspace is the starter files, then overlay-dir's files on
# top (e.g. catalogue/<slug>/grader/reference to grade the reference solution).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
slug=$1; mode=$2; overlay=${3:-}
cat_dir=$root/catalogue/$slug
suite=$cat_dir/grader/suite.json
[ -f "$suite" ] || { echo "no $suite" >&2; exit 2; }
uid=${SANDBOX_UID:-231072}
run=$(mktemp -d /tmp/clarity-sbx.XXXXXX)
chmod 755 "$run"
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/work" "$run/results"
printf 'candidate:x:%s:%s::/tmp:/bin/sh\n' "$uid" "$uid" > "$run/passwd"
printf 'candidate:x:%s:\n' "$uid" > "$run/group"
cp -a "$cat_dir/starter/." "$run/work/"
[ -n "$overlay" ] && cp -a "$overlay/." "$run/work/"
tc=$root/.clarity/toolchains/$slug
mkdir -p "$tc"
py() { python3 -c "import json,sys; s=json.load(open('$suite')); $1"; }
mapfile -t cmd < <(py "print('\n'.join(s['$mode']['command']))")
timeout_s=$(py "print(s['$mode'].get('timeout_seconds', 60))")
services=$(py "print(' '.join(s.get('services', [])))")
while IFS=$'\t' read -r name target; do
  [ -n "$name" ] && ln -sfn "$target" "$run/work/$name"
done < <(py "print('\n'.join(f'{k}\t{v}' for k,v in s.get('links', {}).items()))")
envs=()
while IFS=$'\t' read -r k v; do
  [ -n "$k" ] && envs+=(--setenv "$k" "$v")
done < <(py "print('\n'.join(f'{k}\t{v}' for k,v in s.get('env', {}).items()))")
chown -R "$uid:$uid" "$run/work" "$run/results"
grader=()
[ "$mode" = hidden ] && grader=(--ro-bind "$cat_dir/grader" /grader)
start=$(date +%s%N)
set +e
timeout -s KILL "$((timeout_s + 5))" \
setpriv --reuid "$uid" --regid "$uid" --clear-groups \
  prlimit --nproc=256 --cpu="$timeout_s" --fsize=$((64 * 1024 * 1024)) --nofile=1024 --core=0 \
  bwrap --unshare-all --die-with-parent --new-session \
    --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
    --symlink usr/sbin /sbin \
    --ro-bind "$run/passwd" /etc/passwd --ro-bind "$run/group" /etc/group \
    --ro-bind /etc/ld.so.cache /etc/ld.so.cache --ro-bind-try /etc/alternatives /etc/alternatives \
    --ro-bind-try /etc/ssl /etc/ssl --ro-bind-try /etc/localtime /etc/localtime \
    --proc /proc --dev /dev --tmpfs /tmp \
    --bind "$run/work" /work --bind "$run/results" /results \
    --ro-bind "$root/runner/harness" /harness --ro-bind "$tc" /toolchain \
    "${grader[@]}" --chdir /work --clearenv \
    --setenv PATH /usr/local/go/bin:/usr/local/bin:/usr/bin:/bin --setenv HOME /tmp \
    --setenv LANG C.UTF-8 --setenv TMPDIR /tmp --setenv CLARITY_RESULTS /results/results.json \
    --setenv CLARITY_SERVICES "$services" --setenv GOCACHE /tmp/.gocache --setenv GOPATH /tmp/.gopath \
    --setenv GOPROXY off --setenv GOTOOLCHAIN local --setenv GOFLAGS -mod=mod --setenv NO_COLOR 1 \
    "${envs[@]}" \
    /harness/entry.sh "${cmd[@]}" 2>&1 | head -c 1000000
status=${PIPESTATUS[0]}
set -e
end=$(date +%s%N)
echo "--- exit $status in $(( (end - start) / 1000000 )) ms"
echo "--- results:"
cat "$run/results/results.json" 2>/dev/null || echo "(none)"
echo

#!/usr/bin/env bash
# The runner's platform: what `clarity runner` needs on its machine, installed when missing.
#   source scripts/runner.sh && ensure_runner
# - bubblewrap (the sandbox), redis-server (the Redis service some suites start inside a run),
#   from Debian; PostgreSQL's server binaries come with ensure_postgres (scripts/services.sh);
#   setpriv and prlimit are util-linux, on every Debian machine;
# - each grader suite's toolchain: catalogue/<slug>/grader/prepare.sh fills
#   .clarity/toolchains/<slug> (npm packages, Go modules, a Go build-cache seed), with network,
#   once per change of its inputs (a stamp of their hashes).
# Requires scripts/services.sh sourced first (log, apt_install, CLARITY_HOME).

ensure_runner_packages() {
  local missing=()
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian (the runner's sandbox and services)"
    apt_install "${missing[@]}"
    # Debian starts a system redis on install: the runner starts its own per run, inside each sandbox.
    if command -v systemctl >/dev/null; then as_root systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
    as_root pkill -x redis-server >/dev/null 2>&1 || true
  fi
}

# The inputs a suite's toolchain is prepared from, hashed.
_runner_toolchain_stamp() {
  local slug=$1 dir=catalogue/$1
  {
    sha256sum "$dir/grader/prepare.sh"
    find "$dir/grader" -maxdepth 1 -name 'package-lock.json' -exec sha256sum {} +
    find "$dir/starter" -maxdepth 1 \( -name 'package.json' -o -name 'go.mod' -o -name 'go.sum' \) -exec sha256sum {} +
    find "$dir/starter" -name '*.go' -exec sha256sum {} + | sort
    sha256sum runner/go-warm-cache.sh runner/harness/go_test.py
    go version 2>/dev/null; node --version 2>/dev/null
  } | sha256sum | cut -d' ' -f1
}

ensure_runner_toolchains() {
  local prepare slug dest stamp
  for prepare in catalogue/*/grader/prepare.sh; do
    [ -f "$prepare" ] || continue
    slug=$(basename "$(dirname "$(dirname "$prepare")")")
    dest="$CLARITY_HOME/toolchains/$slug"
    stamp=$(_runner_toolchain_stamp "$slug")
    if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then continue; fi
    log "preparing the $slug suite's toolchain in $dest"
    rm -rf "$dest"
    mkdir -p "$dest"
    CLARITY_TOOLCHAIN_DIR="$dest" bash "$prepare" >"$CLARITY_HOME/toolchains/$slug.log" 2>&1 || {
      tail -30 "$CLARITY_HOME/toolchains/$slug.log" >&2
      log "preparing $slug failed (log: $CLARITY_HOME/toolchains/$slug.log)"
      return 1
    }
    chmod -R a+rX "$dest"
    echo "$stamp" >"$dest/.stamp"
  done
}

ensure_runner() {
  ensure_runner_packages
  ensure_runner_toolchains
}

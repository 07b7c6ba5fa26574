#!/usr/bin/env bash
# shellcheck shell=bash
# Fuzzes the parsers of untrusted input for a bounded time each (docs/decisions/0018-fuzzing.md):
# `telemetry_batch` (request bodies), `wire_record` (Kafka record payloads) and `audit_bundle`
# (bundles handed to an auditor). scripts/test sources this file and calls `run_fuzz_targets`
# after the cargo tests; it also runs on its own:
#
#   scripts/fuzz.sh                                  every target, 60 s each
#   CLARITY_FUZZ_SECONDS=1800 scripts/fuzz.sh wire_record
#
# Each target starts from the committed corpus (fuzz/corpus/<target>, read only) plus what earlier
# runs on this machine found (fuzz/target/corpus/<target>). A crash, a failed invariant, a hang
# (CLARITY_FUZZ_TIMEOUT seconds for one input, default 10) or running out of memory fails the run;
# the input is kept under fuzz/artifacts/<target>/ and printed with the command that reproduces it.
# CLARITY_FUZZ_SECONDS=0 skips fuzzing.
#
# cargo-fuzz is installed from crates.io (pinned, --locked) when missing. It wants a nightly
# toolchain; the targets are built without a sanitizer (`-s none`: the code under test is safe
# Rust, and this keeps the build on stable flags), so when rustup has no nightly the stable
# toolchain is used instead, with a warning. CLARITY_FUZZ_TOOLCHAIN picks one explicitly.

_clarity_fuzz_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_TARGETS=(telemetry_batch wire_record audit_bundle)

_fuzz_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the pinned cargo-fuzz unless that version is already on the PATH.
ensure_cargo_fuzz() {
  if cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    return 0
  fi
  _fuzz_log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
}

# The `+toolchain` argument for cargo: nightly when rustup has it, else stable (see above).
fuzz_toolchain() {
  if [ -n "${CLARITY_FUZZ_TOOLCHAIN:-}" ]; then
    echo "+$CLARITY_FUZZ_TOOLCHAIN"
  elif ! command -v rustup >/dev/null 2>&1; then
    echo ""
  elif rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "+nightly"
  else
    _fuzz_log "no nightly toolchain: fuzzing with stable (sanitizer-free builds need no nightly" \
      "flags); for the supported setup run: rustup toolchain install nightly --profile minimal"
    echo "+stable"
  fi
}

# Builds every target, then runs each (or the ones named) for CLARITY_FUZZ_SECONDS.
run_fuzz_targets() {
  local seconds="${CLARITY_FUZZ_SECONDS:-60}"
  local timeout="${CLARITY_FUZZ_TIMEOUT:-10}"
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=("${FUZZ_TARGETS[@]}")
  if [ "$seconds" = 0 ]; then
    _fuzz_log "fuzzing skipped (CLARITY_FUZZ_SECONDS=0)"
    return 0
  fi
  ensure_cargo_fuzz
  local toolchain
  toolchain="$(fuzz_toolchain)"
  local fuzz=(cargo ${toolchain:+"$toolchain"} fuzz)
  local options=(--sanitizer none --debug-assertions --fuzz-dir "$_clarity_fuzz_root/fuzz")
  local name="${toolchain#+}"
  _fuzz_log "building the fuzz targets (${name:-the default toolchain})"
  "${fuzz[@]}" build "${options[@]}"
  local target failed=()
  for target in "${targets[@]}"; do
    local committed="$_clarity_fuzz_root/fuzz/corpus/$target"
    local work="$_clarity_fuzz_root/fuzz/target/corpus/$target"
    local artifacts="$_clarity_fuzz_root/fuzz/artifacts/$target"
    local dict="$_clarity_fuzz_root/fuzz/dict/$target.dict"
    mkdir -p "$work" "$artifacts"
    local before
    before="$(find "$artifacts" -type f 2>/dev/null | sort)"
    local libfuzzer=(-max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1)
    [ -f "$dict" ] && libfuzzer+=(-dict="$dict")
    _fuzz_log "fuzzing $target for $seconds s"
    if "${fuzz[@]}" run "${options[@]}" "$target" "$work" "$committed" -- "${libfuzzer[@]}" \
      </dev/null 2>"$work.log"; then
      grep -E '^(Done|stat::number_of_executed_units)' "$work.log" >&2 || true
      continue
    fi
    failed+=("$target")
    tail -n 60 "$work.log" >&2
    local input
    for input in $(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort)); do
      {
        echo "fuzz target $target failed on $input"
        echo "  reproduce: cargo ${toolchain:+$toolchain }fuzz run ${options[*]:0:3} $target $input"
        echo "  minimize:  cargo ${toolchain:+$toolchain }fuzz tmin ${options[*]:0:3} $target $input"
        [ "$(wc -c <"$input")" -le 4096 ] && echo "  the input (base64): $(base64 -w0 "$input")"
        echo "  then make it a regression test in domain/ and fix the product code"
      } >&2
    done
  done
  if [ ${#failed[@]} -gt 0 ]; then
    _fuzz_log "fuzzing FAILED: ${failed[*]}"
    return 1
  fi
  _fuzz_log "fuzzing found nothing (${targets[*]}: $seconds s each)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  run_fuzz_targets "$@"
fi

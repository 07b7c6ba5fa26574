# shellcheck shell=bash
# The front-end sources in web/ (the capture library in web/capture/): source this file, then
#
#   ensure_web_deps    # `npm ci` in web/ when node_modules is missing or older than the lock file
#   run_web_tests      # type-check (tsc --noEmit) and the unit tests (node --test on esbuild bundles)
#
# Only `typescript` and `esbuild` are installed (pinned in web/package-lock.json); the unit tests
# use Node's built-in runner and a local HTTP server, no browser.

_clarity_web_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/web"

ensure_web_deps() {
  local dir="$_clarity_web_root"
  local stamp="$dir/node_modules/.clarity-lock.sha256"
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure_web_deps: npm is required (install Node.js 20 or newer)" >&2
    return 1
  fi
  local wanted
  wanted="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return 0; fi
  echo "ensure_web_deps: installing web/ dependencies (npm ci)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$wanted" >"$stamp"
}

run_web_tests() {
  ensure_web_deps || return 1
  (
    cd "$_clarity_web_root" &&
      ./node_modules/.bin/tsc --noEmit -p tsconfig.json &&
      node build-tests.mjs &&
      node --test .build/test/
  )
}

# The capture library in real Chromium (typing, paste, reload, offline; prints the capture path's
# p50 / p99 per event and the request rate). Needs Debian's chromium and tests/browser's
# playwright-core: `source scripts/browser.sh && ensure_browser` first.
run_web_browser_check() {
  ensure_web_deps || return 1
  (cd "$_clarity_web_root" && node capture/bench/browser-check.mjs)
}

# shellcheck shell=bash
# The front-end sources in web/ (the capture library in web/capture/, the candidate page in
# web/take/): source this file, then
#
#   ensure_web_deps    # `npm ci` in web/ when node_modules is missing or older than the lock file
#   run_web_tests      # type-check (tsc --noEmit), the committed candidate-page bundle is fresh
#                      # (check_take_bundle), and the unit tests (node --test on esbuild bundles)
#
# Build tools (`typescript`, `esbuild`) and CodeMirror 6 (bundled into the candidate page) are
# pinned in web/package-lock.json; the unit tests use Node's built-in runner, no browser.

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
      check_take_bundle &&
      node build-tests.mjs &&
      # A hung test fails with its name instead of holding CI until its time limit.
      node --test --test-timeout=120000 .build/test/
  )
}

# The candidate page's bundle (api/assets/take/) is committed so that `cargo build` needs no
# Node: rebuild it into a temporary folder and fail if the committed files differ (the page,
# the lazily loaded face-check module take-face.js and the three face models it loads).
check_take_bundle() {
  ensure_web_deps || return 1
  local tmp
  tmp="$(mktemp -d)" || return 1
  if ! (cd "$_clarity_web_root" && node build-take.mjs "$tmp"); then
    rm -rf "$tmp"
    return 1
  fi
  local assets="$_clarity_web_root/../api/assets/take" stale=""
  for f in take.js take.css take.html take-face.js \
    models/tiny_face_detector_model-weights_manifest.json models/tiny_face_detector_model.bin \
    models/face_landmark_68_model-weights_manifest.json models/face_landmark_68_model.bin \
    models/face_recognition_model-weights_manifest.json models/face_recognition_model.bin; do
    cmp -s "$tmp/$f" "$assets/$f" || stale="$stale $f"
  done
  rm -rf "$tmp"
  if [ -n "$stale" ]; then
    echo "check_take_bundle: api/assets/take/ is stale ($stale ) against web/take/: run node web/build-take.mjs and commit the result" >&2
    return 1
  fi
}

# The capture library in real Chromium (typing, paste, reload, offline; prints the capture path's
# p50 / p99 per event and the request rate). Needs Debian's chromium and tests/browser's
# playwright-core: `source scripts/browser.sh && ensure_browser` first.
run_web_browser_check() {
  ensure_web_deps || return 1
  (cd "$_clarity_web_root" && node capture/bench/browser-check.mjs)
}

# Helper for the browser tests of the reviewer replay page: makes sure Debian's chromium and the
# Node dependencies of tests/browser (playwright-core only) are installed. Sourced, not executed:
#
#   source scripts/browser.sh && ensure_browser
#
# Playwright's own browser download is never used (it cannot be fetched here): the spec launches
# /usr/bin/chromium from Debian.

CLARITY_BROWSER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLARITY_CHROMIUM="${CLARITY_CHROMIUM:-/usr/bin/chromium}"

if ! declare -F log >/dev/null; then
  log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fi

# Runs apt-get as root (directly, or through sudo when not root).
_browser_apt() {
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get "$@"
  elif command -v sudo >/dev/null; then
    sudo DEBIAN_FRONTEND=noninteractive apt-get "$@"
  else
    echo "error: apt-get needs root and sudo is not available" >&2
    return 1
  fi
}

ensure_chromium() {
  if [ -x "$CLARITY_CHROMIUM" ]; then return 0; fi
  log "installing Debian's chromium (browser tests of the replay page)"
  if ! _browser_apt install -y chromium; then
    log "apt-get install failed; refreshing the package lists and retrying"
    _browser_apt update || return 1
    _browser_apt install -y chromium || return 1
  fi
  if [ ! -x "$CLARITY_CHROMIUM" ]; then
    echo "error: chromium was installed but $CLARITY_CHROMIUM is missing" >&2
    return 1
  fi
}

# ffmpeg turns a photo into the fake camera's video for the face-continuity browser test.
ensure_ffmpeg() {
  if command -v ffmpeg >/dev/null; then return 0; fi
  log "installing Debian's ffmpeg (the fake camera of the face-continuity browser test)"
  if ! _browser_apt install -y --no-install-recommends ffmpeg; then
    _browser_apt update || return 1
    _browser_apt install -y --no-install-recommends ffmpeg || return 1
  fi
}

ensure_browser_node_modules() {
  local dir="$CLARITY_BROWSER_ROOT/tests/browser"
  local stamp="$dir/node_modules/.clarity-lock.sha256"
  local wanted
  wanted="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return 0; fi
  if ! command -v npm >/dev/null; then
    echo "error: npm is required for the browser tests (install Node.js 18 or newer)" >&2
    return 1
  fi
  log "installing the browser test dependencies (npm ci in tests/browser)"
  (cd "$dir" && npm ci --no-audit --no-fund) || return 1
  echo "$wanted" >"$stamp"
}

# Everything the browser tests need: chromium, ffmpeg, playwright-core and axe-core.
ensure_browser() {
  ensure_chromium || return 1
  ensure_ffmpeg || return 1
  ensure_browser_node_modules || return 1
}

# shellcheck shell=bash
# Python for the foreign-client checks (tests/foreign/: the topic validator; schemathesis for
# tests/tests/e2e/conformance.rs): source this file, then call
# `ensure_python_deps`. It creates the virtualenv .clarity/venv when it is missing, and
# (re)installs tests/foreign/requirements.txt into it whenever that file changed since the last
# install (a SHA-256 of it is kept in the venv). Afterwards CLARITY_TEST_PYTHON names the venv's
# interpreter; the Rust tests tests/tests/e2e/foreign_client.rs and tests/tests/e2e/conformance.rs run
# the validator and schemathesis with it.
#
# Works on a fresh Debian machine with Python 3.11: if `python3 -m venv` is unavailable it
# installs python3-venv with apt-get (as root).

_clarity_python_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_python_deps() {
  local root="$_clarity_python_root"
  local venv="$root/.clarity/venv"
  local requirements="$root/tests/foreign/requirements.txt"
  local stamp="$venv/.requirements.sha256"
  local python3_bin="${CLARITY_PYTHON3:-python3}"

  if ! command -v "$python3_bin" >/dev/null 2>&1; then
    echo "ensure_python_deps: $python3_bin not found (install python3)" >&2
    return 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    # Debian ships the venv module (and ensurepip) separately.
    if ! "$python3_bin" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        local minor
        minor="$("$python3_bin" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt-get update -qq >/dev/null &&
          { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${minor}-venv" >/dev/null 2>&1 ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } || {
          echo "ensure_python_deps: could not install python3-venv" >&2
          return 1
        }
      else
        echo "ensure_python_deps: the Python venv module is missing; install python3-venv" >&2
        return 1
      fi
    fi
    rm -rf "$venv"
    mkdir -p "$root/.clarity"
    "$python3_bin" -m venv "$venv" || return 1
  fi

  local wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "ensure_python_deps: installing tests/foreign/requirements.txt into .clarity/venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --requirement "$requirements" || return 1
    echo "$wanted" >"$stamp"
  fi
  export CLARITY_TEST_PYTHON="$venv/bin/python"
}

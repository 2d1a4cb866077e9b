#!/usr/bin/env bash
# Installs what the browser checks (tests/browser_harness.py) need: Debian's chromium, and
# websocket-client in the venv to speak the DevTools protocol. Safe to run again.
#
#   bash .ci/install_browser.sh            (PY=/path/to/python to pick the interpreter)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$REPO_ROOT/.venv/bin/python}"
say() { echo "[install_browser] $*"; }

if [ -x /usr/bin/chromium ]; then
    say "chromium already installed"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing chromium with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
# Debian's /usr/bin/chromium wrapper script prints a harmless shell warning on some hosts.
say "$(/usr/bin/chromium --version 2>/dev/null)"

if "$PY" -c "import websocket" 2>/dev/null; then
    say "websocket-client already installed"
else
    say "installing websocket-client into $PY"
    "$PY" -m pip install --quiet --progress-bar off "websocket-client>=1.6" 2>&1 \
        | grep -v "^WARNING: Location '" || true
    "$PY" -c "import websocket"
fi

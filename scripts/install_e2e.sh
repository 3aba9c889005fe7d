#!/usr/bin/env bash
# Install what the browser end-to-end tests need: Chromium from the OS packages (no browser download by
# Playwright) and the Playwright Python package into the project's venv. Called by `make e2e`.
set -euo pipefail
VENV="${VENV:-.venv}"
if [ -z "${LABKIT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian's chromium (apt-get) ..."
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "Chromium not found and apt-get is unavailable: install Chromium or Chrome, then set LABKIT_CHROMIUM=/path/to/it" >&2
    exit 1
  fi
fi
if ! "$VENV/bin/python" -c "import playwright" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q -e '.[dev,e2e]'
fi
echo "e2e ready: $("${LABKIT_CHROMIUM:-$(command -v chromium || command -v chromium-browser)}" --version)"

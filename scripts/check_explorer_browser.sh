#!/usr/bin/env bash
# Headless-browser check of the retrieval explorer's offline page (tests/test_explorer_browser.py).
# Installs Debian's `chromium` and `libjs-leaflet` with apt-get when they are missing, then runs the
# slow test. Screenshots are kept at $XJEPA_EXPLORER_SCREENSHOT (default /tmp/explorer_screenshot.png).
# Usage: scripts/check_explorer_browser.sh [extra pytest args]   (PYTHON=... picks the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/javascript/leaflet/leaflet.js ] || need+=(libjs-leaflet)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} (apt-get)"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${need[@]}"
fi

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export XJEPA_EXPLORER_SCREENSHOT="${XJEPA_EXPLORER_SCREENSHOT:-/tmp/explorer_screenshot.png}"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
"$PYTHON" -m pytest -q -p no:cacheprovider -m slow tests/test_explorer_browser.py "$@"
echo "screenshot: $XJEPA_EXPLORER_SCREENSHOT"

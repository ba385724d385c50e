#!/usr/bin/env bash
# Installs what the browser tests need besides Debian's chromium (scripts/system-deps.sh),
# only when it is missing:
#   - axe-core (npm), the accessibility checker the tests inject into JupyterLab and
#     Notebook 7 pages; into a project-local node_modules (tests/browser/node_modules),
#     never globally, so nothing is fetched at test time.
# Usage: bash scripts/browser-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=tests/browser
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if [ ! -f "$DEST/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || {
    echo "installing nodejs and npm (for axe-core)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
  }
  echo "installing axe-core (npm, into $DEST/node_modules)"
  npm install --prefix "$DEST" --no-save --no-package-lock --no-fund --no-audit --loglevel=error 'axe-core@^4.10'
fi

#!/usr/bin/env bash
# Installs what the real-JupyterHub tests (tests/hub) need, only when it is missing:
#   - configurable-http-proxy (npm, global): the proxy JupyterHub starts;
#   - jupyterhub (PyPI) into the dev venv: the hub itself runs from there;
#   - oauthenticator (PyPI) into the dev venv: the hub's OpenID login in tests/hub/test_hub_sso.py.
# The single-user servers run from a separate venv the test fixture builds (world-readable,
# non-editable install); that needs a Python every user can execute (python3 + python3-venv).
# Usage: bash scripts/hub-deps.sh [VENV]   (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v configurable-http-proxy >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || {
    echo "installing nodejs and npm (for configurable-http-proxy)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
  }
  echo "installing configurable-http-proxy (npm -g)"
  $SUDO npm install -g --no-fund --no-audit --loglevel=error configurable-http-proxy
fi

# A system python users can run, with venv (the hub fixture builds the users' venv with it).
if ! /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
fi

if ! "$VENV/bin/python" -c 'import jupyterhub' >/dev/null 2>&1; then
  echo "installing jupyterhub into $VENV"
  "$VENV/bin/python" -m pip install -q 'jupyterhub>=5,<7'
fi

if ! "$VENV/bin/python" -c 'import oauthenticator.generic' >/dev/null 2>&1; then
  echo "installing oauthenticator into $VENV"
  "$VENV/bin/python" -m pip install -q 'oauthenticator>=17.3'
fi

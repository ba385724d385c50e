#!/usr/bin/env bash
# `make run`: the local sandbox (unless WEAVIATE_URL is set) and a Jupyter server with
# the package installed, both on 127.0.0.1. Ctrl-C stops everything this started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${WEAVIATE_URL:-}" ]; then
  "$PY" -m weaviate_auth_widget.sandbox &
  pids+=($!)
  sleep 1
else
  echo "Using WEAVIATE_URL=$WEAVIATE_URL (no sandbox started)."
fi

"$PY" -m jupyter server --ip=127.0.0.1 --no-browser --ServerApp.root_dir="$PWD/notebooks" &
pids+=($!)
wait -n "${pids[@]}"

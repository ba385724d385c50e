#!/usr/bin/env bash
# `make run`: the local sandbox (unless WEAVIATE_URL is set) and JupyterLab with the
# quickstart open, both on 127.0.0.1. Ctrl-C stops everything this started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${WEAVIATE_URL:-}" ]; then
  info=$(mktemp)
  "$PY" -m weaviate_auth_widget.sandbox --json --shape cloud >"$info" &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$info" ] && break; sleep 0.1; done
  [ -s "$info" ] || { echo "the sandbox did not start" >&2; exit 1; }
  "$PY" - "$info" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["credentials"]
print(f"""
Weaviate sandbox (throwaway demo credentials, new at every start)
  Weaviate:           {d['weaviate_url']}  (version {d['version']}, gRPC on port {d['grpc_port']})
  Admin API key:      {c['admin_api_key']}
  Read-only API key:  {c['readonly_api_key']}
  Username/password:  {c['username']} / {c['password']}
""")
PYEOF
  export WEAVIATE_AUTH_DEFAULT_URL
  WEAVIATE_AUTH_DEFAULT_URL=$("$PY" -c "import json,sys;print(json.load(open(sys.argv[1]))['weaviate_url'])" "$info")
  export WEAVIATE_GRPC_PORT  # the quickstart's official-client section reads it
  WEAVIATE_GRPC_PORT=$("$PY" -c "import json,sys;print(json.load(open(sys.argv[1]))['grpc_port'])" "$info")
  rm -f "$info"
else
  echo "Using WEAVIATE_URL=$WEAVIATE_URL (no sandbox started)."
  export WEAVIATE_AUTH_DEFAULT_URL="$WEAVIATE_URL"
fi

# A scratch copy of the notebooks, so working in them leaves the repository clean.
mkdir -p .run/notebooks
cp -n notebooks/*.ipynb .run/notebooks/ 2>/dev/null || true
extra=()
[ "$(id -u)" -eq 0 ] && extra+=(--allow-root)
"$PY" -m jupyter lab --ip=127.0.0.1 --no-browser "${extra[@]}" \
  --ServerApp.root_dir="$PWD/.run/notebooks" --LabApp.default_url=/lab/tree/quickstart.ipynb &
pids+=($!)
wait -n "${pids[@]}"

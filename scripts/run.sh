#!/usr/bin/env bash
# `make run`: the local sandbox (unless WEAVIATE_URL is set) and JupyterLab with the
# quickstart open, both on 127.0.0.1. Ctrl-C stops everything this started.
# The sandbox listens on fixed ports (WEAVIATE_SANDBOX_PORT, WEAVIATE_SANDBOX_IDP_PORT)
# with the same demo credentials at every start, and the demo profile `sandbox` is saved
# or refreshed each time, so `%weaviate_auth sandbox` works on every run.
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
  sandbox=$!
  pids+=("$sandbox")
  for _ in $(seq 100); do
    [ -s "$info" ] && break
    kill -0 "$sandbox" 2>/dev/null || { rm -f "$info"; exit 1; }  # it said why on stderr
    sleep 0.1
  done
  [ -s "$info" ] || { echo "the sandbox did not start" >&2; exit 1; }
  "$PY" - "$info" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["credentials"]
print(f"""
Weaviate sandbox (demo credentials, the same at every start)
  Weaviate:           {d['weaviate_url']}  (version {d['version']}, gRPC on port {d['grpc_port']})
  Admin API key:      {c['admin_api_key']}
  Read-only API key:  {c['readonly_api_key']}
  Username/password:  {c['username']} / {c['password']}
""")
PYEOF
  "$PY" -m weaviate_auth_widget.sandbox.demo_setup "$info"
  export WEAVIATE_AUTH_DEFAULT_URL
  WEAVIATE_AUTH_DEFAULT_URL=$("$PY" -c "import json,sys;print(json.load(open(sys.argv[1]))['weaviate_url'])" "$info")
  rm -f "$info"
else
  echo "Using WEAVIATE_URL=$WEAVIATE_URL (no sandbox started)."
  export WEAVIATE_AUTH_DEFAULT_URL="$WEAVIATE_URL"
fi

# A scratch copy of the notebooks, so working in them leaves the repository clean. Every
# run starts from the clean notebooks; the previous run's copies move to .run/previous/.
mkdir -p .run/notebooks .run/previous
for nb in notebooks/*.ipynb; do
  scratch=".run/notebooks/$(basename "$nb")"
  if [ -e "$scratch" ] && ! cmp -s "$nb" "$scratch"; then
    mv -f "$scratch" ".run/previous/$(basename "$nb")"
    echo "The previous run's $(basename "$nb") is in .run/previous/."
  fi
  cp "$nb" "$scratch"
done
extra=()
[ "$(id -u)" -eq 0 ] && extra+=(--allow-root)
"$PY" -m jupyter lab --ip=127.0.0.1 --no-browser "${extra[@]}" \
  --ServerApp.root_dir="$PWD/.run/notebooks" --LabApp.default_url=/lab/tree/quickstart.ipynb &
pids+=($!)
wait -n "${pids[@]}"

#!/usr/bin/env bash
# Runs the worker locally: build, .dev.vars, local D1 migrations (every binding), a token,
# wrangler dev.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
bash scripts/build.sh
if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "[dev] created .dev.vars from .dev.vars.example"
fi
# Every D1 binding of wrangler.toml (each shard of SHARDS) gets the migrations.
BINDINGS_FILE="$(mktemp)"
node scripts/d1-ids.mjs --local "$BINDINGS_FILE"
mapfile -t D1_BINDINGS < "$BINDINGS_FILE"
rm -f "$BINDINGS_FILE"
for binding in "${D1_BINDINGS[@]}"; do
  npx wrangler d1 migrations apply "$binding" --local >&2
done
PORT="${PORT:-8787}"
TOKEN="$(node scripts/token.mjs --workspace "${WORKSPACE:-ws_demo}" --role admin)"
cat <<MSG

  Local worker: http://localhost:$PORT   (D1 and queues are local, under .wrangler/)
  Admin token for workspace ${WORKSPACE:-ws_demo} (24 h):

  export TOKEN=$TOKEN
  curl -s -H "Authorization: Bearer \$TOKEN" http://localhost:$PORT/api/v1/webhooks/events

MSG
# The build already ran; skip wrangler's [build] step.
exec npx wrangler dev --local --port "$PORT" --var DEV_ALLOW_PRIVATE_TARGETS:true --no-bundle "$@"

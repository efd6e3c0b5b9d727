#!/usr/bin/env bash
# Deploys like a Workers user: refuses the placeholder D1 id, applies the remote D1
# migrations of every D1 binding, then `wrangler deploy`. `npm run deploy -- --env staging`
# for staging; `--dry-run` stops after the checks, before the build and anything remote.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh

ENV_ARGS=()
ENV_NAME=""
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --env|-e) ENV_NAME="${2:?--env needs a name}"; ENV_ARGS=(--env "$ENV_NAME"); shift 2 ;;
    --env=*) ENV_NAME="${1#--env=}"; ENV_ARGS=(--env "$ENV_NAME"); shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) echo "[deploy] unknown argument: $1 (only --env <name> and --dry-run)" >&2; exit 2 ;;
  esac
done

# The D1 ids as wrangler itself reads them for this environment, checked by a script that
# writes its answer to a file (what wrangler prints on stdout cannot pollute it). Wrangler
# refuses a config whose [assets] directory does not exist yet (scripts/build.sh fills it).
mkdir -p target/assets
BINDINGS_FILE="$(mktemp)"
trap 'rm -f "$BINDINGS_FILE"' EXIT
node scripts/d1-ids.mjs "$BINDINGS_FILE" "$ENV_NAME" || exit 1
mapfile -t D1_BINDINGS < "$BINDINGS_FILE"
echo "[deploy] D1 ids set for: ${D1_BINDINGS[*]}${ENV_NAME:+ (env $ENV_NAME)}" >&2
if [ "$DRY_RUN" = 1 ]; then
  echo "[deploy] dry run: stopping before the build and every remote command" >&2
  exit 0
fi

bash scripts/build.sh
echo "[deploy] applying remote D1 migrations${ENV_NAME:+ (env $ENV_NAME)}" >&2
for binding in "${D1_BINDINGS[@]}"; do
  npx wrangler d1 migrations apply "$binding" --remote "${ENV_ARGS[@]}"
done
echo "[deploy] deploying the worker${ENV_NAME:+ (env $ENV_NAME)}" >&2
# The build already ran; skip wrangler's [build] step.
npx wrangler deploy --no-bundle "${ENV_ARGS[@]}"

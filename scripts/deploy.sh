#!/usr/bin/env bash
# Deploys like a Workers user: refuses the placeholder D1 id, applies the remote D1
# migrations, then `wrangler deploy`. `npm run deploy -- --env staging` for staging.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh

ENV_ARGS=()
ENV_NAME=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env|-e) ENV_NAME="${2:?--env needs a name}"; ENV_ARGS=(--env "$ENV_NAME"); shift 2 ;;
    --env=*) ENV_NAME="${1#--env=}"; ENV_ARGS=(--env "$ENV_NAME"); shift ;;
    *) echo "[deploy] unknown argument: $1 (only --env <name>)" >&2; exit 2 ;;
  esac
done

# The D1 id as wrangler itself reads it for this environment. Wrangler refuses a config
# whose [assets] directory does not exist yet (scripts/build.sh fills it below).
mkdir -p target/assets
DB_ID="$(ENV_NAME="$ENV_NAME" node --input-type=module -e '
  import { unstable_getMiniflareWorkerOptions as read } from "wrangler";
  const { workerOptions } = read("wrangler.toml", process.env.ENV_NAME || undefined, {});
  process.stdout.write(String(workerOptions.d1Databases?.DB?.id ?? ""));
')"
if [ -z "$DB_ID" ] || [ -z "${DB_ID//[0-]/}" ]; then
  cat >&2 <<MSG
[deploy] wrangler.toml${ENV_NAME:+ (env.$ENV_NAME)} still has the placeholder D1 database id.
         Create the database, then put the id it prints into database_id${ENV_NAME:+ under [env.$ENV_NAME]}:
           npx wrangler d1 create planeconnection-webhooks${ENV_NAME:+-$ENV_NAME}
         (see "Deploy" in README.md), then run npm run deploy${ENV_NAME:+ -- --env $ENV_NAME} again.
MSG
  exit 1
fi

bash scripts/build.sh
echo "[deploy] applying remote D1 migrations${ENV_NAME:+ (env $ENV_NAME)}" >&2
npx wrangler d1 migrations apply DB --remote "${ENV_ARGS[@]}"
echo "[deploy] deploying the worker${ENV_NAME:+ (env $ENV_NAME)}" >&2
# The build already ran; skip wrangler's [build] step.
npx wrangler deploy --no-bundle "${ENV_ARGS[@]}"

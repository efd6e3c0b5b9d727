#!/usr/bin/env bash
# `npm run bench`: set-up (idempotent), release build (cache-aware), then every benchmark.
# Arguments go to bench/run.mjs, e.g. `npm run bench -- --quick` or `-- --only fanout`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
bash scripts/build.sh
exec node bench/run.mjs "$@"

#!/usr/bin/env bash
# Release build of the worker: build/index.js + build/index_bg.wasm. Prints sizes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
# The portal page (portal/ → portal/dist/, embedded into the worker); skips when fresh.
node portal/build.mjs >&2
# Cache-aware: nothing to do when the bundle is newer than every input.
if [ -f build/index.js ] && [ -z "${FORCE_BUILD:-}" ] && \
   [ -z "$(find src portal/dist Cargo.toml Cargo.lock openapi.json -newer build/index.js 2>/dev/null | head -1)" ]; then
  echo "[build] up to date ($(wc -c < build/index_bg.wasm) bytes wasm)" >&2
  exit 0
fi
start=$(date +%s)
worker-build --release >&2
wasm=build/index_bg.wasm
[ -f "$wasm" ] || wasm=$(ls build/*.wasm | head -1)
printf '[build] %ss: wasm %s bytes, gzip %s bytes\n' "$(( $(date +%s) - start ))" \
  "$(wc -c < "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)" >&2

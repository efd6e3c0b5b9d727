#!/usr/bin/env bash
# Release build of the worker: build/index.js + build/index_bg.wasm. Prints sizes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
# The portal page (portal/ → portal/dist/, embedded into the worker); skips when fresh.
node portal/build.mjs >&2
# The static assets of wrangler.toml's [assets]: served by the worker through its ASSETS
# binding (src/routes/portal.rs, src/routes/system.rs), not embedded in the wasm.
mkdir -p target/assets
cp portal/dist/index.html target/assets/portal.html
cp openapi.json target/assets/openapi.json
# Cache-aware: nothing to do when the bundle is newer than every input.
if [ -f build/index.js ] && [ -z "${FORCE_BUILD:-}" ] && \
   [ -z "$(find src portal/dist/csp.txt Cargo.toml Cargo.lock -newer build/index.js 2>/dev/null | head -1)" ]; then
  echo "[build] up to date ($(wc -c < build/index_bg.wasm) bytes wasm)" >&2
  exit 0
fi
start=$(date +%s)
worker-build --release >&2
wasm=build/index_bg.wasm
[ -f "$wasm" ] || wasm=$(ls build/*.wasm | head -1)
# worker-build keeps the name section (function names for stack traces): keep that file
# for debugging, outside build/ so it is never uploaded, and ship it stripped.
mkdir -p target/wasm-debug
cp "$wasm" target/wasm-debug/index_bg.wasm
# One more binaryen pass at -Os on the way (worker-build ran -O): 4.7 KB less gzip for
# ≈ 45 s of build (BENCHMARKS.md, "Bundle size, round 3"). The enabled features are the
# ones worker-build allows (its list), so nothing newer than workerd runs is emitted.
"$WASM_OPT_BIN" target/wasm-debug/index_bg.wasm -Os --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling -o "$wasm"
size() { printf '%s bytes, gzip %s bytes' "$(wc -c < "$1")" "$(gzip -9 -c "$1" | wc -c)"; }
printf '[build] %ss: wasm %s (unstripped: %s, in target/wasm-debug/)\n' "$(( $(date +%s) - start ))" \
  "$(size "$wasm")" "$(size target/wasm-debug/index_bg.wasm)" >&2

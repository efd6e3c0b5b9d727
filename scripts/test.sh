#!/usr/bin/env bash
# Every test: host unit tests of the core (cargo test), the release wasm build, then the
# Miniflare integration tests (node --test). Installs what is missing first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
echo "== cargo test (host) =="
cargo test --lib --release 2>&1
echo "== release build (wasm) =="
bash scripts/build.sh
echo "== Miniflare integration tests =="
node --test --test-concurrency=2 tests/*.test.mjs

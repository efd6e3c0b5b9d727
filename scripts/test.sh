#!/usr/bin/env bash
# Every test: host unit tests of the core (cargo test), the release wasm build, then the
# Miniflare integration tests (node --test), with one shard and again with three.
# Installs what is missing first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
echo "== cargo test (host) =="
cargo test --lib --release 2>&1
echo "== the Rust receiver example (the tests run it on real deliveries) =="
cargo build --quiet --release --example verify_receiver 2>&1
echo "== release build (wasm) =="
bash scripts/build.sh
echo "== Miniflare integration tests (one shard: DB) =="
node --test --test-concurrency=2 tests/*.test.mjs
# The same suites over three shards (SPEC §9.2): each worker lists DB, DB_2 and DB_3 and
# places workspaces across them; the suites that set up their own shards, and the deploy
# script's, run once above. To keep the whole run near 20 minutes, reliability runs its
# burst in the mode with the most workspaces (50, spread over the three) and fuzz a third
# of its rounds: their other modes and rounds do not depend on where rows live.
echo "== Miniflare integration tests again, over three shards (TEST_SHARDS=DB,DB_2,DB_3) =="
TEST_SHARDS=DB,DB_2,DB_3 RELIABILITY_MODES="one id per message" FUZZ_ROUNDS=40 node --test --test-concurrency=2 \
  $(ls tests/*.test.mjs | grep -v -e '/moves\.' -e '/shards\.' -e '/deploy\.')

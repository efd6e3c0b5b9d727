#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: wasm target, worker-build, wasm-bindgen-cli
# (exactly the version in Cargo.lock), npm packages, Chromium for the portal tests, Python's
# cryptography for the receiver example. Skips what is already right.
# Source it (`. scripts/setup.sh`) to get WASM_BINDGEN_BIN / WASM_OPT_BIN / ESBUILD_BIN.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WORKER_BUILD_VERSION="0.8.7"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown (~30 s)"
  rustup target add wasm32-unknown-unknown >&2
fi

if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (compiles from source, ~5 min on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked >&2
fi

# worker-build would download wasm-bindgen from GitHub, which this network blocks.
WBG_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
if [ -z "$WBG_VERSION" ]; then
  cargo generate-lockfile >&2
  WBG_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $NF}')" != "$WBG_VERSION" ]; then
  say "installing wasm-bindgen-cli $WBG_VERSION (~4 min)"
  # Not --locked: its lockfile pins a webpki-roots release the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" >&2
fi

if [ ! -x node_modules/.bin/wrangler ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (wrangler, miniflare, binaryen, esbuild)"
  npm install --no-audit --no-fund >&2
fi

# The Python receiver example verifies Ed25519 (`v1a`) with the `cryptography` package
# (the standard library has none); the tests run it.
PY_CRYPTOGRAPHY_VERSION="48.0.0"
if ! python3 -c "import cryptography" 2>/dev/null; then
  say "installing Python cryptography $PY_CRYPTOGRAPHY_VERSION for the receiver example's Ed25519"
  python3 -m pip install --quiet "cryptography==$PY_CRYPTOGRAPHY_VERSION" >&2
fi

# The portal's browser tests drive Debian's Chromium: Playwright's own browser download
# fails on this network. CI runs as root; elsewhere say what to run.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium for the portal's browser tests (~1 min)"
    apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
  else
    say "warning: /usr/bin/chromium is missing (portal tests need it): sudo apt-get install -y chromium"
  fi
fi

export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
say "tools ready: worker-build $WORKER_BUILD_VERSION, wasm-bindgen $WBG_VERSION, $(node_modules/.bin/wrangler --version 2>/dev/null | tail -1 | sed 's/^ *//')"

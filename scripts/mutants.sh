#!/usr/bin/env bash
# Mutation testing of the pure core (`npm run mutants`): cargo-mutants over every module of
# src/core, judged by the host tests (`cargo test --lib`), then a table per module.
# Settings and the excluded equivalent mutants: .cargo/mutants.toml. Not part of `npm test`.
# Extra arguments go to cargo-mutants, e.g. `npm run mutants -- --file src/core/outbound/retry.rs`
# or `-- --jobs 2`. Results: mutants.out/ (git-ignored); the table alone: `--summary-only`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MUTANTS_VERSION="27.1.0"
say() { printf '\033[1m[mutants]\033[0m %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if [ "${1:-}" = "--summary-only" ]; then
  exec node scripts/mutants-summary.mjs mutants.out/outcomes.json
fi

if [ "$(cargo mutants --version 2>/dev/null | awk '{print $NF}')" != "$MUTANTS_VERSION" ]; then
  say "installing cargo-mutants $MUTANTS_VERSION (~2 min)"
  cargo install cargo-mutants --version "$MUTANTS_VERSION" --locked >&2
fi

# Every run builds in a fresh copy of the tree; a shared target directory keeps the
# dependencies built once (a run's baseline then takes ~1 min instead of ~5).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# `--iterate` lists the mutants it skips as previously caught, unviable ones included:
# keep the earlier unviable list so the table can tell them apart.
unviable_before="$(mktemp)"
trap 'rm -f "$unviable_before"' EXIT
if [[ " $* " == *" --iterate "* ]]; then
  cat mutants.out/unviable.txt mutants.out/previously_unviable.txt 2>/dev/null | sort -u > "$unviable_before" || true
fi
started=$(date +%s)
status=0
# Exit code 2 means some mutants were missed: the table below says which modules.
cargo mutants --no-shuffle "$@" || status=$?
if [ -s "$unviable_before" ] && [ -d mutants.out ]; then
  cp "$unviable_before" mutants.out/previously_unviable.txt
fi
say "run time: $(( $(date +%s) - started )) s"
node scripts/mutants-summary.mjs mutants.out/outcomes.json
exit "$status"

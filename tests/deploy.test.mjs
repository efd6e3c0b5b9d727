// `npm run deploy`'s D1 check (issue 25), run without network on a copy of the repository:
// placeholder ids are refused before anything is built or sent, whatever wrangler prints
// (a `.dev.vars` makes it print "Using secrets defined in .dev.vars" on stdout), for every
// D1 binding of the environment; real-looking ids pass (stopped by `--dry-run`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
const REAL_LOOKING = "3f2b9c1e-7a4d-4e8b-9c0d-1a2b3c4d5e6f";
let copy;

before(() => {
  copy = mkdtempSync(join(tmpdir(), "deploy-check-"));
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(ROOT, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    // Keep mtimes: set-up reinstalls npm packages when package.json looks newer than them.
    cpSync(join(ROOT, f), join(copy, f), { preserveTimestamps: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
  // Stands in for everything after the check: if the build starts, the check let it through.
  writeFileSync(join(copy, "scripts/build.sh"), '#!/usr/bin/env bash\ntouch "$(dirname "$0")/../BUILD_STARTED"\nexit 1\n');
  // What `npm run dev` leaves behind, the condition under which the old check was fooled.
  writeFileSync(join(copy, ".dev.vars"), 'AUTH_JWT_SECRET="dev-secret-dev-secret-dev-secret-0123"\n');
});
after(() => copy && rmSync(copy, { recursive: true, force: true }));

function deploy(args, toml) {
  writeFileSync(join(copy, "wrangler.toml"), toml);
  rmSync(join(copy, "BUILD_STARTED"), { force: true });
  // No credentials and a PATH whose npx fails loudly: nothing remote can happen here.
  const fakeBin = join(copy, ".fake-bin");
  mkdirSync(fakeBin, { recursive: true });
  writeFileSync(join(fakeBin, "npx"), '#!/bin/sh\necho "npx $*" >> "$(dirname "$0")/../NPX_CALLED"; exit 1\n', { mode: 0o755 });
  rmSync(join(copy, "NPX_CALLED"), { force: true });
  const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, CLOUDFLARE_API_TOKEN: "", WRANGLER_SEND_METRICS: "false" };
  const run = spawnSync("bash", ["scripts/deploy.sh", ...args], { cwd: copy, env, encoding: "utf8", timeout: 120_000 });
  return {
    status: run.status,
    stderr: run.stderr,
    built: existsSync(join(copy, "BUILD_STARTED")),
    npx: existsSync(join(copy, "NPX_CALLED")) ? readFileSync(join(copy, "NPX_CALLED"), "utf8") : "",
  };
}

const shipped = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
const withIds = (top, staging = top) => {
  let n = 0;
  return shipped.replace(new RegExp(PLACEHOLDER, "g"), () => (n++ === 0 ? top : staging));
};

test("placeholder id with a .dev.vars present: refused with the create message, nothing built or sent", () => {
  assert.ok(shipped.includes(PLACEHOLDER), "the shipped wrangler.toml carries the placeholder");
  const r = deploy([], shipped);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /still has the placeholder D1 database id for DB/);
  assert.match(r.stderr, /npx wrangler d1 create planeconnection-webhooks\n/);
  assert.equal(r.built, false, "the build must not start");
  assert.equal(r.npx, "", "no wrangler command may run");
});

test("staging: its own placeholder is refused even when the top-level id is real", () => {
  const r = deploy(["--env", "staging"], withIds(REAL_LOOKING, PLACEHOLDER));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /\[env\.staging\] of wrangler\.toml still has the placeholder D1 database id for DB/);
  assert.match(r.stderr, /planeconnection-webhooks-staging/);
  assert.equal(r.built, false);
  assert.equal(r.npx, "");
});

test("every D1 binding is checked: a second database left at the placeholder is refused by name", () => {
  const toml = withIds(REAL_LOOKING).replace(
    "[[queues.producers]]",
    `[[d1_databases]]\nbinding = "DB_2"\ndatabase_name = "planeconnection-webhooks-db-2"\ndatabase_id = "${PLACEHOLDER}"\nmigrations_dir = "migrations"\n\n[[queues.producers]]`,
  );
  const r = deploy(["--dry-run"], toml);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /placeholder D1 database id for DB_2/);
  assert.doesNotMatch(r.stderr, /placeholder D1 database id for DB\./);
  assert.equal(r.built, false);
});

test("an id that is not a UUID is refused", () => {
  const r = deploy(["--dry-run"], withIds("Using secrets defined in .dev.vars 0000"));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /database_id of DB is not a D1 database id/);
  assert.equal(r.built, false);
});

test("real-looking ids pass the check; --dry-run stops before the build and anything remote", () => {
  const r = deploy(["--dry-run"], withIds(REAL_LOOKING));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /D1 ids set for: DB/);
  assert.match(r.stderr, /dry run: stopping before the build/);
  assert.equal(r.built, false);
  assert.equal(r.npx, "");
  const staging = deploy(["--env", "staging", "--dry-run"], withIds(PLACEHOLDER, REAL_LOOKING));
  assert.equal(staging.status, 0, staging.stderr);
  assert.match(staging.stderr, /D1 ids set for: DB \(env staging\)/);
});

test("without --dry-run, real ids go on to the build (the check does not stop a real deploy)", () => {
  const r = deploy([], withIds(REAL_LOOKING));
  assert.equal(r.built, true, r.stderr);
  assert.notEqual(r.status, 0); // the stand-in build fails on purpose
  assert.equal(r.npx, "");
});

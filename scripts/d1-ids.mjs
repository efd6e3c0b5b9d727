// Reads the D1 bindings of one wrangler environment through wrangler's own config reader
// and refuses placeholder or malformed database ids, for `scripts/deploy.sh`.
//
// Usage: node scripts/d1-ids.mjs [--local] <out-file> [env]
// Writes the checked binding names, one a line, to <out-file>; exits 1 with a message on
// stderr when an id is missing, the all-zeros placeholder, or not a D1 id. `--local`
// lists the bindings without checking ids (local D1 needs none: `npm run dev`). The result
// goes to a file, never stdout: wrangler prints notes of its own there (for example
// "Using secrets defined in .dev.vars"), which once polluted the id this check read.
import { writeFileSync } from "node:fs";
import { unstable_getMiniflareWorkerOptions as readConfig } from "wrangler";

const args = process.argv.slice(2);
const local = args[0] === "--local";
const [outFile, envName] = local ? args.slice(1) : args;
if (!outFile) {
  console.error("usage: node scripts/d1-ids.mjs [--local] <out-file> [env]");
  process.exit(2);
}

const D1_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PLACEHOLDER = /^[0-]*$/;
const where = envName ? `[env.${envName}] of wrangler.toml` : "wrangler.toml";
const dbName = (binding) =>
  `planeconnection-webhooks${envName ? `-${envName}` : ""}${binding === "DB" ? "" : `-${binding.toLowerCase().replace(/_/g, "-")}`}`;

const { workerOptions } = readConfig("wrangler.toml", envName || undefined, {});
const databases = Object.entries(workerOptions.d1Databases ?? {});
const problems = [];
if (databases.length === 0) problems.push(`${where} declares no D1 database.`);
for (const [binding, entry] of local ? [] : databases) {
  const id = String((typeof entry === "string" ? entry : entry?.id) ?? "").trim();
  if (PLACEHOLDER.test(id)) {
    problems.push(
      `${where} still has the placeholder D1 database id for ${binding}.\n` +
        `         Create the database, then put the id it prints into database_id of that binding:\n` +
        `           npx wrangler d1 create ${dbName(binding)}`,
    );
  } else if (!D1_ID.test(id)) {
    problems.push(`${where}: database_id of ${binding} is not a D1 database id (a UUID): ${JSON.stringify(id)}`);
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(`[deploy] ${p}`);
  console.error(`         (see "Deploy" in README.md), then run npm run deploy${envName ? ` -- --env ${envName}` : ""} again.`);
  process.exit(1);
}
writeFileSync(outFile, databases.map(([binding]) => binding).join("\n") + "\n");

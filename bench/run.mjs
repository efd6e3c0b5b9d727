// Runs every benchmark against the release build (build/index.js + build/index_bg.wasm),
// prints one summary table (plus the sub-tables behind it) and writes the same figures as
// JSON to bench/results/latest.json. `npm run bench` builds first (bench/run.sh).
//
//   node bench/run.mjs [--quick] [--only size,inbound,management,fanout,latency,isolation,cpu,shards,stats,rows]
//                      [--runs N] [--no-what-if] [--wait-idle SECONDS] [--out PATH] [--before DIR]
//
// --quick      fewer repetitions (1 run per scenario, fewer requests): ~2 min instead of ~8
// --only       a comma-separated subset of the sections
// --runs       repetitions per scenario (medians are over these); default 3 (quick: 1)
// --no-what-if skip the sha2/hmac opt-level-3 rebuild of the CPU section
// --write-doc  also put the tables into BENCHMARKS.md (between its bench:begin/end markers)
// --before DIR the inbound section also runs the build in DIR (e.g. an older commit's
//              build/) interleaved with the current one and the SDK baseline
// --wait-idle  before each section, wait up to this long for the 1-min load average to
//              drop below the core count (a shared machine skews latency figures)
import { execSync } from "node:child_process";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem, platform, release } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../tests/helpers.mjs";
import { markdownTable, sleep } from "./lib.mjs";
import * as size from "./size.mjs";
import * as inbound from "./inbound.mjs";
import * as management from "./management.mjs";
import * as fanout from "./fanout.mjs";
import * as latency from "./latency.mjs";
import * as isolation from "./isolation.mjs";
import * as cpu from "./cpu.mjs";
import * as shards from "./shards.mjs";
import * as stats from "./stats.mjs";
import * as rows from "./rows.mjs";

const { values } = parseArgs({ options: {
  quick: { type: "boolean", default: false },
  only: { type: "string" },
  runs: { type: "string" },
  "no-what-if": { type: "boolean", default: false },
  "wait-idle": { type: "string", default: "0" },
  "write-doc": { type: "boolean", default: false },
  out: { type: "string", default: join(ROOT, "bench/results/latest.json") },
  before: { type: "string" },
} });
const quick = values.quick;
const runs = Number(values.runs ?? (quick ? 1 : 3));

const SECTIONS = {
  size: () => size.run({ runs: quick ? 3 : 7 }),
  inbound: () => inbound.run({ requests: quick ? 100 : 600, runs, before: values.before }),
  management: () => management.run({ creates: 200, queries: quick ? 20 : 50, runs }),
  fanout: () => fanout.run({ runs }),
  latency: () => latency.run({ seconds: quick ? 5 : 10 }),
  isolation: () => isolation.run({ runs }),
  cpu: () => cpu.run({ requests: quick ? 100 : 300, whatIf: !quick && !values["no-what-if"], quick }),
  shards: () => shards.run({ runs, logSizes: quick ? [10_000] : [10_000, 50_000] }),
  stats: () => stats.run({ calls: quick ? 10 : 20, logSizes: quick ? [1_000, 20_000] : [1_000, 200_000] }),
  rows: () => rows.run(),
};
const chosen = values.only ? values.only.split(",").map((s) => s.trim()) : Object.keys(SECTIONS);
for (const s of chosen) if (!SECTIONS[s]) throw new Error(`unknown section ${s}; choose from ${Object.keys(SECTIONS).join(", ")}`);

const sh = (cmd) => { try { return execSync(cmd, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); } catch { return null; } };
const pkgVersion = (name) => { try { return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version; } catch { return null; } };

async function waitIdle(maxSeconds) {
  const limit = cpus().length;
  const until = Date.now() + maxSeconds * 1000;
  while (loadavg()[0] >= limit && Date.now() < until) await sleep(5000);
}

const meta = {
  date: new Date().toISOString(),
  git: { commit: sh("git rev-parse --short HEAD"), branch: sh("git rev-parse --abbrev-ref HEAD"), dirty: Boolean(sh("git status --porcelain --untracked-files=no")) },
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), os: `${platform()} ${release()}` },
  versions: { node: process.version, miniflare: pkgVersion("miniflare"), workerd: pkgVersion("workerd"), wrangler: pkgVersion("wrangler"), rustc: sh("rustc --version") },
  flags: { quick, runs, only: chosen, whatIf: !quick && !values["no-what-if"] },
  sections: {},
};

const results = [];
const t0 = Date.now();
for (const id of chosen) {
  await waitIdle(Number(values["wait-idle"]));
  const started = Date.now();
  const loadBefore = loadavg()[0];
  process.stderr.write(`[bench] ${id}… (load ${loadBefore.toFixed(2)})\n`);
  const r = await SECTIONS[id]();
  meta.sections[id] = { seconds: Math.round((Date.now() - started) / 1000), loadavg1Before: +loadBefore.toFixed(2), loadavg1After: +loadavg()[0].toFixed(2) };
  results.push(r);
}
meta.totalSeconds = Math.round((Date.now() - t0) / 1000);

// ---- print ----
const summary = [];
let n = 0;
for (const r of results) for (const f of r.figures) summary.push({ "#": ++n, section: r.title, figure: f.figure, value: f.value, "measured as": f.how });

const out = [];
out.push(`**PlaneConnection webhooks — benchmarks** (${meta.date}, ${meta.git.branch}@${meta.git.commit}${meta.git.dirty ? "+dirty" : ""})`);
out.push("");
out.push(`${meta.machine.cores}× ${meta.machine.cpu}, ${meta.machine.memGiB} GiB, Node ${meta.versions.node}, miniflare ${meta.versions.miniflare}, workerd ${meta.versions.workerd}; ${quick ? "QUICK run" : `${runs} runs per scenario`}; ${meta.totalSeconds} s`);
out.push("");
out.push(`Load average (1 min) before each section: ${Object.entries(meta.sections).map(([k, v]) => `${k} ${v.loadavg1Before}`).join(", ")} (cores: ${meta.machine.cores})`);
out.push("");
out.push("### Summary");
out.push("");
out.push(markdownTable(summary));
for (const r of results) {
  for (const t of r.tables) {
    out.push("");
    out.push(`#### ${t.title}`);
    out.push("");
    out.push(markdownTable(t.rows));
  }
}
const text = out.join("\n");
console.log(text);

mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(values.out, JSON.stringify({
  meta,
  summary,
  tables: results.flatMap((r) => r.tables.map((t) => ({ section: r.id, ...t }))),
  raw: Object.fromEntries(results.map((r) => [r.id, r.json])),
  markdown: text,
}, null, 2));
process.stderr.write(`[bench] wrote ${values.out}\n`);

if (values["write-doc"]) {
  const doc = join(ROOT, "BENCHMARKS.md");
  const md = readFileSync(doc, "utf8");
  const begin = "<!-- bench:begin -->";
  const end = "<!-- bench:end -->";
  const a = md.indexOf(begin);
  const b = md.indexOf(end);
  if (a < 0 || b < a) throw new Error("BENCHMARKS.md has no bench:begin/end markers");
  writeFileSync(doc, `${md.slice(0, a + begin.length)}\n${text}\n${md.slice(b)}`);
  process.stderr.write(`[bench] updated ${doc}\n`);
}

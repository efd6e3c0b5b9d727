// Per-module table of a cargo-mutants run (scripts/mutants.sh): caught, missed, timeout,
// unviable and % killed = (caught + timeout) / (caught + missed + timeout). Unviable mutants
// (they do not compile) and the equivalent ones excluded in .cargo/mutants.toml never count.
// Then the missed mutants, which are the tests still to write.
// After `--iterate`, the mutants caught by earlier runs (previously_caught.txt) count too.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

const path = process.argv[2] ?? "mutants.out/outcomes.json";
const { outcomes, start_time: startTime, end_time: endTime } = JSON.parse(readFileSync(path, "utf8"));
const KINDS = { CaughtMutant: "caught", MissedMutant: "missed", Timeout: "timeout", Unviable: "unviable" };

const modules = new Map();
const missed = [];
const moduleOf = (file) => file.replace(/^src\/core\//, "").replace(/(\/mod)?\.rs$/, "");
const row = (module) => {
  if (!modules.has(module)) modules.set(module, { caught: 0, missed: 0, timeout: 0, unviable: 0 });
  return modules.get(module);
};
const lines = (file) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
// cargo-mutants lists unviable mutants among the previously caught; scripts/mutants.sh
// keeps the earlier unviable list beside it.
const unviableBefore = new Set(lines(join(dirname(path), "previously_unviable.txt")));
for (const name of lines(join(dirname(path), "previously_caught.txt"))) {
  row(moduleOf(name.split(":")[0]))[unviableBefore.has(name) ? "unviable" : "caught"] += 1;
}
for (const outcome of outcomes) {
  const mutant = outcome.scenario?.Mutant;
  if (!mutant) continue; // the baseline
  const kind = KINDS[outcome.summary];
  if (!kind) throw new Error(`unknown outcome ${outcome.summary} for ${mutant.name}`);
  row(moduleOf(mutant.file))[kind] += 1;
  if (kind === "missed") missed.push(mutant.name ?? `${mutant.file}:${mutant.span.start.line}: ${describe(mutant)}`);
}

function describe(mutant) {
  return `${mutant.function?.function_name ?? "?"}: ${mutant.genre} → ${mutant.replacement}`;
}

const killedPercent = (r) => {
  const viable = r.caught + r.missed + r.timeout;
  return viable === 0 ? "—" : `${((100 * (r.caught + r.timeout)) / viable).toFixed(1)} %`;
};
const total = { caught: 0, missed: 0, timeout: 0, unviable: 0 };
const table = [
  "| module | caught | missed | timeout | unviable | killed |",
  "|---|--:|--:|--:|--:|--:|",
];
for (const [module, r] of [...modules].sort(([a], [b]) => a.localeCompare(b))) {
  for (const key of Object.keys(total)) total[key] += r[key];
  const viable = r.caught + r.missed + r.timeout;
  const flag = viable > 0 && (r.caught + r.timeout) / viable < 0.95 ? " ✗ (< 95 %)" : "";
  table.push(`| ${module} | ${r.caught} | ${r.missed} | ${r.timeout} | ${r.unviable} | ${killedPercent(r)}${flag} |`);
}
table.push(`| **all ${modules.size} modules** | ${total.caught} | ${total.missed} | ${total.timeout} | ${total.unviable} | ${killedPercent(total)} |`);
console.log(table.join("\n"));
if (startTime && endTime) {
  const minutes = (Date.parse(endTime) - Date.parse(startTime)) / 60_000;
  console.log(`\n${outcomes.length - 1} mutants tested in ${minutes.toFixed(1)} min (${startTime} → ${endTime})`);
}
if (missed.length > 0) {
  console.log(`\nmissed (${missed.length}):`);
  for (const line of missed) console.log(`  ${line}`);
}

// D1 rows per delivery (SPEC §9.1): the measurement of tests/cost.test.mjs (one event to
// 100 webhooks answering 200 at once, D1's own `meta` counted outside the worker), run
// here so that a bench run records it beside the CPU and inbound figures. The counts do
// not depend on the machine or its load.
//
//   node bench/rows.mjs
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../tests/helpers.mjs";
import { isMain } from "./lib.mjs";

export async function run() {
  const test = spawnSync(process.execPath, ["--test", join(ROOT, "tests/cost.test.mjs")],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, COST_DEBUG: "1" }, maxBuffer: 64 * 1024 * 1024 });
  const out = `${test.stdout}\n${test.stderr}`;
  const total = out.match(/# 1 → (\d+): ([\d.]+) rows written, ([\d.]+) rows read per delivery/);
  if (test.status !== 0 || !total) throw new Error(`tests/cost.test.mjs failed (exit ${test.status}):\n${out.slice(-2000)}`);
  const [, fanOut, written, read] = total;
  const statements = [...out.matchAll(/# \\# ([\d.]+) read ([\d.]+) written \((\d+)×\) (.*)/g)]
    .map(([, r, w, times, sql]) => ({ "rows read": r, "rows written": w, "run": `${times}×`, statement: sql.trim().slice(0, 90) }));
  return {
    id: "rows", title: "9. D1 rows per delivery",
    figures: [{
      figure: `D1 rows per delivery, 1 → ${fanOut} fan-out (publish share + first attempt)`,
      value: `${written} written, ${read} read`,
      how: "tests/cost.test.mjs: D1's result meta of every statement, counted outside the worker (tests/d1-counter.mjs), ÷ deliveries; receivers answer 200 at once; shipped Free settings (K = 10)",
    }],
    tables: [{ title: `D1 rows per delivery by statement, 1 → ${fanOut}`, rows: statements }],
  };
}

if (isMain(import.meta.url)) {
  const r = await run();
  console.log(r.figures[0].figure, r.figures[0].value);
  console.table(r.tables[0].rows);
}

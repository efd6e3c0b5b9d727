// Delivery logs query (SPEC §4.6): filters, validation, pagination, newest first, on rows
// seeded directly in D1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, api, token } from "./helpers.mjs";

let mf, db;
const DAY = 86_400_000;
const base = Date.parse("2026-03-10T12:00:00Z");

before(async () => {
  ({ mf, db } = await startWorker());
  const rows = [];
  // 30 logs in ws_a over 3 webhooks, 3 statuses, 2 types, 10 days; 5 in ws_b.
  for (let i = 0; i < 30; i++) {
    rows.push(["ws_a", `dlv_a${String(i).padStart(2, "0")}`, `wh_${i % 3}`, ["pending", "success", "failed"][i % 3],
      i % 2 ? "invoice.paid" : "flight.departed", base + (i % 10) * DAY + i]);
  }
  for (let i = 0; i < 5; i++) rows.push(["ws_b", `dlv_b${i}`, "wh_b", "success", "invoice.paid", base + i]);
  await db.batch([
    db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES ('evt_seed', 'ws_a', 'flight.departed', '{\"id\":\"evt_seed\",\"data\":{\"k\":1}}', 'api', ?)").bind(base),
    ...rows.map(([ws, id, wh, status, type, at]) =>
      db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at) VALUES (?, ?, ?, 'evt_seed', ?, ?, 1, 4, ?, ?)")
        .bind(id, ws, wh, type, status, at, at)),
    db.prepare("INSERT INTO delivery_attempts (log_id, attempt, attempted_at, response_status, duration_ms) VALUES ('dlv_a29', 1, ?, 500, 12)").bind(base),
  ]);
});
after(async () => mf?.dispose());

const q = (query, auth) => api(mf, "GET", `/api/v1/webhooks/logs${query}`, auth ? { auth } : {});

test("defaults: newest first, limit 50, total, only own workspace", async () => {
  const res = await q("");
  assert.equal(res.status, 200);
  assert.equal(res.json.total, 30);
  assert.equal(res.json.limit, 50);
  assert.equal(res.json.offset, 0);
  assert.equal(res.json.data.length, 30);
  const times = res.json.data.map((l) => Date.parse(l.created_at));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));
  assert.ok(res.json.data.every((l) => l.id.startsWith("dlv_a")));
  const listed = res.json.data.find((l) => l.id === "dlv_a29");
  assert.equal(listed.attempt_history, undefined, "lists leave the attempt history out");
  assert.equal(listed.payload, undefined, "lists leave the payload out");
});

test("each filter narrows as specified", async () => {
  const byHook = await q("?webhook_id=wh_1");
  assert.equal(byHook.json.total, 10);
  assert.ok(byHook.json.data.every((l) => l.webhook_id === "wh_1"));
  const byStatus = await q("?status=failed");
  assert.equal(byStatus.json.total, 10);
  assert.ok(byStatus.json.data.every((l) => l.status === "failed"));
  const byType = await q("?event_type=invoice.paid");
  assert.equal(byType.json.total, 15);
  const combined = await q("?event_type=invoice.paid&status=success");
  assert.ok(combined.json.data.every((l) => l.status === "success" && l.event_type === "invoice.paid"));
  assert.equal(combined.json.total, 5);
});

test("date_from / date_to are inclusive; bare dates cover whole days", async () => {
  const day0 = new Date(base).toISOString().slice(0, 10);
  const res = await q(`?date_from=${day0}&date_to=${day0}`);
  assert.equal(res.json.total, 3, "logs 0, 10 and 20 fall on the first day");
  const exact = await q(`?date_from=${new Date(base).toISOString()}&date_to=${new Date(base).toISOString()}`);
  assert.equal(exact.json.total, 1, "date-time bounds are inclusive to the millisecond");
  const later = await q(`?date_from=${new Date(base + 9 * DAY).toISOString()}`);
  assert.equal(later.json.total, 3);
});

test("pagination with limit and offset", async () => {
  const first = await q("?limit=7&offset=0");
  const second = await q("?limit=7&offset=7");
  assert.equal(first.json.data.length, 7);
  assert.equal(first.json.total, 30);
  assert.equal(second.json.offset, 7);
  const ids = new Set([...first.json.data, ...second.json.data].map((l) => l.id));
  assert.equal(ids.size, 14, "pages do not overlap");
  const end = await q("?limit=100&offset=28");
  assert.equal(end.json.data.length, 2);
  const beyond = await q("?offset=500");
  assert.equal(beyond.json.data.length, 0);
  assert.equal(beyond.json.total, 30);
});

test("cursor pages: same filters, every row once, in order, next_cursor null at the end", async () => {
  for (const filter of ["", "&status=failed", "&webhook_id=wh_2&event_type=invoice.paid"]) {
    const all = (await q(`?limit=100${filter}`)).json;
    assert.equal(all.next_cursor, null, "a page that holds everything is the last");
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const page = (await q(`?limit=4${filter}${cursor ? `&cursor=${cursor}` : ""}`)).json;
      assert.equal(page.total, all.total, "total counts the filter, not what is left");
      assert.equal(page.total_capped, false);
      seen.push(...page.data.map((l) => l.id));
      cursor = page.next_cursor;
      pages++;
      assert.ok(pages <= 10);
    } while (cursor);
    assert.deepEqual(seen, all.data.map((l) => l.id), `${filter}: cursor pages give every row once, newest first`);
    assert.equal(pages, Math.max(1, Math.ceil(all.total / 4)));
  }
  // A cursor of another workspace's rows shows nothing of them.
  const first = (await q("?limit=2")).json;
  const theirs = await q(`?limit=50&cursor=${first.next_cursor}`, token({ workspace: "ws_b" }));
  assert.ok(theirs.json.data.every((l) => l.id.startsWith("dlv_b")));
});

test("cursor and offset rules: offset up to 10,000, not both, cursors are checked", async () => {
  assert.equal((await q("?offset=10000")).status, 200);
  for (const [query, field] of [["?offset=10001", "offset"], ["?cursor=abc", "cursor"], ["?cursor=", "cursor"]]) {
    const res = await q(query);
    assert.equal(res.status, 400, query);
    assert.ok(res.json.error.fields[field], `${query} → ${res.text}`);
  }
  const { next_cursor } = (await q("?limit=3")).json;
  const both = await q(`?limit=3&offset=3&cursor=${next_cursor}`);
  assert.equal(both.status, 400);
  assert.ok(both.json.error.fields.offset);
});

test("total is exact up to 10,000, then capped with total_capped", async () => {
  // 10,050 rows in one statement (a recursive CTE), not 10,050 prepared statements.
  await db.prepare(`INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at)
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10049)
    SELECT printf('dlv_m%06d', i), 'ws_many', 'wh_m', 'evt_seed', 'flight.departed', 'success', 1, 1, ?1 + i, ?1 + i FROM n`).bind(base).run();
  const many = token({ workspace: "ws_many" });
  const page = await q("?limit=5", many);
  assert.equal(page.json.total, 10_000);
  assert.equal(page.json.total_capped, true);
  const exact = await q("?limit=5&date_to=" + new Date(base + 9_999).toISOString(), many);
  assert.equal(exact.json.total, 10_000);
  assert.equal(exact.json.total_capped, false);
  // offset reaches the 10,000th row; beyond it, cursors go on.
  const deep = await q("?limit=100&offset=10000", many);
  assert.equal(deep.json.data.length, 50);
  assert.equal(deep.json.next_cursor, null);
});

test("malformed parameters are 400 naming the parameter", async () => {
  for (const [query, field] of [
    ["?limit=0", "limit"], ["?limit=101", "limit"], ["?limit=abc", "limit"], ["?offset=-1", "offset"],
    ["?offset=1.5", "offset"], ["?status=done", "status"], ["?event_type=flight.landed", "event_type"],
    ["?date_from=yesterday", "date_from"], ["?date_to=2026-02-30", "date_to"],
    ["?date_from=2026-03-05&date_to=2026-03-01", "date_from"], ["?sort=asc", "sort"], ["?limit=5&limit=6", "limit"],
  ]) {
    const res = await q(query);
    assert.equal(res.status, 400, query);
    assert.equal(res.json.error.code, "validation_error", query);
    assert.ok(res.json.error.fields[field], `${query} → ${res.text}`);
  }
});

test("another workspace sees only its own logs", async () => {
  const res = await q("", token({ workspace: "ws_b" }));
  assert.equal(res.json.total, 5);
  assert.ok(res.json.data.every((l) => l.id.startsWith("dlv_b")));
  const none = await q("?webhook_id=wh_1", token({ workspace: "ws_b" }));
  assert.equal(none.json.total, 0);
});

test("each logs filter walks its index, in order, without a sort (EXPLAIN QUERY PLAN)", async () => {
  // store/logs.rs names the index: failed deliveries only for status=failed (0016), by
  // webhook when the filter has one, else by workspace (the other filters are checked on
  // the walk).
  for (const [where, index] of [
    ["l.workspace_id = 'ws_a'", "logs_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.webhook_id = 'wh_1'", "logs_by_webhook"],
    ["l.workspace_id = 'ws_a' AND l.status = 'failed'", "logs_failed_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.status = 'pending'", "logs_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.created_at >= 0 AND l.status = 'failed'", "logs_failed_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.event_type = 'invoice.paid'", "logs_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.webhook_id = 'wh_1' AND l.status = 'failed'", "logs_failed_by_workspace"],
    ["l.workspace_id = 'ws_a' AND l.webhook_id = 'wh_1' AND l.status = 'success'", "logs_by_webhook"],
    ["l.workspace_id = 'ws_a' AND l.created_at >= 0 AND l.created_at <= 9e15", "logs_by_workspace"],
  ]) {
    // The same shapes as store/logs.rs: page ids from the index (first page, and after a
    // cursor), then the join; the total counted from the index.
    const after = "AND (l.created_at < 5 OR (l.created_at = 5 AND l.id < 'dlv_x'))";
    for (const cond of [where, `${where} ${after}`]) {
      const sql = `SELECT l.id FROM (SELECT l.id FROM delivery_logs l INDEXED BY ${index} WHERE ${cond} ORDER BY l.created_at DESC, l.id DESC LIMIT 51 OFFSET 0) p JOIN delivery_logs l ON l.id = p.id ORDER BY l.created_at DESC, l.id DESC`;
      const plan = (await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all()).results.map((r) => r.detail).join(" | ");
      assert.match(plan, new RegExp(`SEARCH l USING (COVERING )?INDEX ${index} `), `${cond}: ${plan}`);
      // Only the outer re-sort of the 51 joined rows may use a temporary b-tree.
      assert.doesNotMatch(plan.split("SCAN p")[0], /TEMP B-TREE/, `${cond}: the index must give the order: ${plan}`);
      assert.doesNotMatch(plan, /SCAN l\b/, `${cond} must not scan the table: ${plan}`);
    }
    const count = `SELECT COUNT(*) FROM (SELECT 1 FROM delivery_logs l INDEXED BY ${index} WHERE ${where} LIMIT 10001)`;
    const countPlan = (await db.prepare(`EXPLAIN QUERY PLAN ${count}`).all()).results.map((r) => r.detail).join(" | ");
    assert.match(countPlan, /SEARCH l USING (COVERING )?INDEX/, `${where}: ${countPlan}`);
  }
});

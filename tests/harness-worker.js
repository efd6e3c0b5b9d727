// The tests' door to D1 and the delivery queue, run by Miniflare beside the worker under
// test (tests/helpers.mjs, `d1(mf, binding)`, `queueProducer(mf)`). Miniflare's own
// Node-side bindings (`getD1Database`) make a synchronous cross-thread call per property
// read, and under load that call can take another call's reply (an assertion inside
// Miniflare fails the test); requests to this worker are plain async HTTP.
//
// POST {op: "query", binding, statements: [{sql, args, method}], batch} → [result, …]
// POST {op: "exec", binding, sql} → result
// POST {op: "send", binding, messages: [{body}]} → {}
// Byte values travel as {"$bytes": base64}, errors as 500 {name, message}.

const encode = (v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v))
  ? { $bytes: btoa(String.fromCharCode(...new Uint8Array(v instanceof ArrayBuffer ? v : v.buffer))) }
  : v;
const decode = (v) => (v && typeof v === "object" && typeof v.$bytes === "string")
  ? Uint8Array.from(atob(v.$bytes), (c) => c.charCodeAt(0)).buffer
  : v;
const encodeRows = (rows) => rows.map((row) => Array.isArray(row)
  ? row.map(encode)
  : Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encode(v)])));

export default {
  async fetch(request, env) {
    try {
      const call = await request.json();
      const binding = env[call.binding];
      if (!binding) throw new Error(`no binding ${call.binding}`);
      if (call.op === "exec") return Response.json(await binding.exec(call.sql));
      if (call.op === "send") { await binding.sendBatch(call.messages); return Response.json({}); }
      const prepared = call.statements.map((s) => binding.prepare(s.sql).bind(...s.args.map(decode)));
      if (call.batch) {
        const results = await binding.batch(prepared);
        return Response.json(results.map((r) => ({ ...r, results: encodeRows(r.results ?? []) })));
      }
      const [statement] = prepared;
      if (call.statements[0].method === "raw") return Response.json([{ results: encodeRows(await statement.raw()) }]);
      const result = await statement.all();
      return Response.json([{ ...result, results: encodeRows(result.results ?? []) }]);
    } catch (e) {
      return Response.json({ name: e?.name ?? "Error", message: String(e?.message ?? e) }, { status: 500 });
    }
  },
};

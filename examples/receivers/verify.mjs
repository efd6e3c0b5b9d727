// Verifying PlaneConnection webhook deliveries in Node (no dependencies).
//
// Both schemes of a delivery are checked with a timing-safe compare:
//  * Standard Webhooks: `webhook-signature` = space-separated `v1,<base64>` entries over
//    "<webhook-id>.<webhook-timestamp>.<body>"; any entry may match (during a secret
//    rotation the previous secret signs too). The timestamp is signed, so a 5-minute
//    tolerance stops replays.
//  * Ed25519 (`"signing": "ed25519"` webhooks): `webhook-signature` = `v1a,<base64>`
//    entries, Ed25519 signatures of the same "<webhook-id>.<webhook-timestamp>.<body>",
//    checked with the webhook's public key (`whpk_` + base64 of 32 bytes, shown by the
//    API). You hold no secret at all; these webhooks send no `X-Webhook-Signature`.
//  * The original scheme: `X-Webhook-Signature: sha256=<hex HMAC(secret, body)>` (and
//    `X-Webhook-Signature-Previous` during a rotation). Its timestamp is not signed, so a
//    captured delivery can be replayed: prefer `webhook-signature`.
// Deliveries are retried with the same `webhook-id`: remember the ids you processed.
//
// CLI (used by the project's tests): reads {"secret", "deliveries": [{"headers", "body_base64"}]}
// on stdin (`secret`: the webhook's secret, or its `whpk_` public key) and prints one line
// per delivery: accepted | duplicate | rejected: <why>.
import { createHmac, createPublicKey, timingSafeEqual, verify } from "node:crypto";

const TOLERANCE_SECONDS = 5 * 60;

/** The HMAC key of the Standard Webhooks scheme (`whsec_` + base64 → the decoded bytes). */
function standardKey(secret) {
  if (secret.startsWith("whsec_")) {
    const encoded = secret.slice(6);
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      const key = Buffer.from(encoded, "base64");
      if (key.length >= 24 && key.length <= 64) return key;
    }
  }
  return Buffer.from(secret, "utf8");
}

/** A `whpk_` key as a Node KeyObject: the 32 raw bytes behind Ed25519's fixed SPKI header. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
function publicKeyFrom(whpk) {
  const raw = Buffer.from(whpk.slice("whpk_".length), "base64");
  if (raw.length !== 32) throw new Error("a whpk_ key holds 32 bytes");
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies one delivery. `secret`: the webhook's secret, or its `whpk_` public key;
 * `headers`: lower-case names → values; `body`: the raw bytes (Buffer) exactly as
 * received — never a re-serialized JSON object. Throws on failure.
 */
export function verifyDelivery(secret, headers, body, { now = Date.now() / 1000 } = {}) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  const ed25519 = secret.startsWith("whpk_");
  if (ed25519 && !(id && timestamp && signatures)) throw new Error("no webhook-signature");
  if (id && timestamp && signatures) {
    if (!/^\d+$/.test(timestamp) || Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) {
      throw new Error("timestamp outside the 5-minute tolerance");
    }
    if (ed25519) {
      const key = publicKeyFrom(secret);
      const message = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
      const ok = signatures.split(" ").some((entry) => {
        const [version, sig] = entry.split(",", 2);
        return version === "v1a" && sig !== undefined && verify(null, message, key, Buffer.from(sig, "base64"));
      });
      if (!ok) throw new Error("no matching webhook-signature");
      return id;
    }
    const expected = createHmac("sha256", standardKey(secret))
      .update(`${id}.${timestamp}.`).update(body).digest("base64");
    const ok = signatures.split(" ").some((entry) => {
      const [version, sig] = entry.split(",", 2);
      return version === "v1" && sig !== undefined && safeEqual(sig, expected);
    });
    if (!ok) throw new Error("no matching webhook-signature");
    return id;
  }
  // The original scheme (for senders or proxies that drop the webhook-* headers).
  const expected = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const offered = [headers["x-webhook-signature"], ...(headers["x-webhook-signature-previous"] ?? "").split(",")];
  if (!offered.some((sig) => sig && safeEqual(sig, expected))) throw new Error("no matching X-Webhook-Signature");
  const sent = Date.parse(headers["x-webhook-timestamp"] ?? "");
  if (!(Math.abs(now - sent / 1000) <= TOLERANCE_SECONDS)) throw new Error("timestamp outside the 5-minute tolerance");
  return headers["x-webhook-delivery"];
}

/** Remembers processed ids (use a database with a TTL ≥ the retry window in production). */
export class Deduper {
  #seen = new Set();
  firstTime(id) {
    if (this.#seen.has(id)) return false;
    this.#seen.add(id);
    return true;
  }
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const { secret, deliveries } = JSON.parse(input);
  const dedupe = new Deduper();
  for (const d of deliveries) {
    const headers = Object.fromEntries(Object.entries(d.headers).map(([k, v]) => [k.toLowerCase(), v]));
    try {
      const id = verifyDelivery(secret, headers, Buffer.from(d.body_base64, "base64"));
      console.log(dedupe.firstTime(id) ? "accepted" : "duplicate");
    } catch (e) {
      console.log(`rejected: ${e.message}`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();

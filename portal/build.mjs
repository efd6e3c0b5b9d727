// Builds the portal into one self-contained page: esbuild bundles and minifies
// portal/src/main.js and portal/src/style.css, both are inlined into portal/src/index.html,
// and their SHA-256 hashes go to portal/dist/csp.txt for the Content-Security-Policy the
// worker sends (no 'unsafe-inline'). The worker embeds csp.txt and serves the page from its
// static assets (scripts/build.sh copies it to target/assets/; src/routes/portal.rs).
// Cache-aware: does nothing when portal/dist is newer than every source (FORCE_BUILD=1
// rebuilds). Deterministic: the same sources give the same bytes.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const DIR = dirname(fileURLToPath(import.meta.url));
const SRC = join(DIR, "src");
const DIST = join(DIR, "dist");
const PAGE = join(DIST, "index.html");
const CSP = join(DIST, "csp.txt");
/** SPEC §8.7 budget for the whole page, gzip. */
const BUDGET_GZIP = 60 * 1024;

const mtime = (p) => { try { return statSync(p).mtimeMs; } catch { return 0; } };
const newestSource = Math.max(mtime(fileURLToPath(import.meta.url)), ...readdirSync(SRC).map((f) => mtime(join(SRC, f))));
if (!process.env.FORCE_BUILD && Math.min(mtime(PAGE), mtime(CSP)) > newestSource) {
  console.error(`[portal] up to date (${gzipSync(readFileSync(PAGE), { level: 9 }).length} bytes gzip)`);
  process.exit(0);
}

const common = { bundle: true, minify: true, write: false, logLevel: "warning", legalComments: "none" };
const [js, css] = await Promise.all([
  build({ ...common, entryPoints: [join(SRC, "main.js")], format: "iife", target: "es2020" }),
  build({ ...common, entryPoints: [join(SRC, "style.css")], target: "chrome100" }),
]);
const script = js.outputFiles[0].text.trim();
const style = css.outputFiles[0].text.trim();
if (/<\/script/i.test(script) || /<\/style/i.test(style)) throw new Error("a closing tag inside inlined code");

const sha = (text) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
const template = readFileSync(join(SRC, "index.html"), "utf8");
const html = template
  .replace("<!--style-->", () => `<style>${style}</style>`)
  .replace("<!--script-->", () => `<script>${script}</script>`);
const sources = `script-src ${sha(script)}; style-src ${sha(style)}`;

mkdirSync(DIST, { recursive: true });
writeFileSync(PAGE, html);
writeFileSync(CSP, sources + "\n");
const gzip = gzipSync(Buffer.from(html), { level: 9 }).length;
console.error(`[portal] page ${html.length} bytes, gzip ${gzip} bytes (js ${script.length}, css ${style.length})`);
if (gzip > BUDGET_GZIP) throw new Error(`portal page is ${gzip} bytes gzip, over the ${BUDGET_GZIP} budget`);

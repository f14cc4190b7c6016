//! Test support for the SDK's browser tests: a small site and collector on loopback.
//!
//! `startSite()` serves www/ (the built SDK under /sdk/pkg/) and test pages from a node
//! http server on 127.0.0.1 and a free port, and plays the collector at `POST /v1/batch`
//! the way the worker's contract says (200 with `accepted`, 400, 429 with Retry-After),
//! or fails on purpose (`site.mode = "down"` resets every connection). It records every
//! request and every event received, so tests can say "every messageId arrived exactly
//! once". The real worker is used by sdk_demo.test.mjs; this one makes failures on demand.
//!
//! Test pages: `/t/<anything>?cfg=<json>` is a page that embeds the snippet and calls
//! `weft.load("demo-write-key", cfg)` and nothing else; tests drive it with
//! `page.evaluate`. `&pageview=1` adds `weft.page()`; `&before=<js>` runs code before the
//! snippet (e.g. to break localStorage), `&after=<js>` right after it, before the SDK has
//! loaded.

import { readFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WWW = join(ROOT, "www");
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
};

/** True when scripts/build-sdk.sh has run. */
export function sdkBuilt() {
  return existsSync(join(WWW, "sdk/pkg/weft.js")) && existsSync(join(WWW, "sdk/pkg/weft_sdk_bg.wasm"));
}

/** The test page for a config. */
export function testPage(cfg = {}, { pageview = false, before = "", after = "" } = {}) {
  const snippet = readFileSync(join(WWW, "snippet.min.js"), "utf8");
  return [
    "<!doctype html><html><head><meta charset=utf-8><title>weft test</title><script>",
    before,
    "</script><script>",
    snippet,
    `weft.load("demo-write-key", ${JSON.stringify(cfg)});`,
    pageview ? "weft.page();" : "",
    after,
    "</script></head><body>test</body></html>",
  ].join("\n");
}

/**
 * Starts the site and collector.
 *
 * @returns {Promise<{ url: string, port: number, mode: string, retryAfter: string,
 *   requests: object[], events: object[], counts: () => Map<string, number>,
 *   waitFor: (pred: () => boolean, ms?: number) => Promise<void>, stop: () => Promise<void> }>}
 */
export async function startSite() {
  const site = {
    mode: "ok",
    retryAfter: "1",
    requests: [],
    events: [],
    counts() {
      const m = new Map();
      for (const e of site.events) m.set(e.messageId, (m.get(e.messageId) || 0) + 1);
      return m;
    },
    async waitFor(pred, ms = 15000) {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error("timed out waiting: " + pred.toString());
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (req.method === "POST" && url.pathname === "/v1/batch") return collect(req, res);
    if (url.pathname.startsWith("/t/")) {
      const cfg = JSON.parse(url.searchParams.get("cfg") || "{}");
      const body = testPage(cfg, {
        pageview: url.searchParams.has("pageview"),
        before: url.searchParams.get("before") || "",
        after: url.searchParams.get("after") || "",
      });
      res.writeHead(200, { "content-type": TYPES[".html"] });
      return res.end(body);
    }
    let path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, "");
    if (path === "/") path = "/index.html";
    if (!extname(path)) path += ".html";
    const file = join(WWW, path);
    if (!file.startsWith(WWW) || !existsSync(file)) {
      res.writeHead(404);
      return res.end("not found");
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
    res.end(readFileSync(file));
  });

  function collect(req, res) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const record = {
        mode: site.mode,
        bytes: Buffer.byteLength(raw),
        contentType: req.headers["content-type"],
        body: null,
      };
      site.requests.push(record);
      if (site.mode === "down") return req.socket.destroy();
      if (site.mode === "429") {
        res.writeHead(429, { "retry-after": site.retryAfter, "content-type": "application/json" });
        return res.end('{"error":"rate limited"}');
      }
      if (site.mode === "500") {
        res.writeHead(500);
        return res.end('{"error":"boom"}');
      }
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        res.writeHead(400);
        return res.end('{"error":"body is not json"}');
      }
      record.body = body;
      if (site.mode === "400") {
        res.writeHead(400);
        return res.end('{"error":"nothing valid"}');
      }
      if (body.writeKey !== "demo-write-key") {
        res.writeHead(401);
        return res.end('{"error":"unknown write key"}');
      }
      for (const e of body.batch) site.events.push(e);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, accepted: body.batch.length, rejected: [], warnings: [] }));
    });
  }

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  site.port = server.address().port;
  site.url = `http://127.0.0.1:${site.port}`;
  site.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  return site;
}

/** `/t/<name>?cfg=...` for a config and page options. */
export function pageUrl(base, name, cfg = {}, extra = {}) {
  const q = new URLSearchParams({ cfg: JSON.stringify(cfg) });
  if (extra.pageview) q.set("pageview", "1");
  if (extra.before) q.set("before", extra.before);
  if (extra.after) q.set("after", extra.after);
  for (const [k, v] of Object.entries(extra.query || {})) q.set(k, v);
  return `${base}/t/${name}?${q}`;
}

/** Waits until the SDK runs in `page`. */
export function sdkReady(page) {
  return page.evaluate(() => new Promise((resolve) => weft.ready(() => resolve(true))));
}

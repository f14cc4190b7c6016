//! `@segment/analytics-next`, unchanged, in headless Chromium against the local collector.
//!
//! A node http server on 127.0.0.1 serves a small page and the library's browser bundle
//! from node_modules (`dist/umd`, also as the `cdnURL` its lazy chunks would load from).
//! The page loads it with `cdnSettings` given inline, so no settings are fetched, and its
//! `Segment.io` api host pointed at the worker's `/v1` over http. Chromium maps
//! `*.shop.test` to loopback, so the page (`www.shop.test`) is an allowed origin of the
//! collector (`t.shop.test`) and can read its answers. Every request the page makes
//! elsewhere is aborted and recorded: the test asserts there were none.
//!
//! The library's page, track, identify, group and alias land in the worker, posted as
//! text/plain to the one-letter routes (and to `/v1/b` in its batching mode), and are
//! stitched: the anonymous id it made up and the user id are one profile.

import assert from "node:assert/strict";
import { createReadStream, existsSync } from "node:fs";
import { createServer } from "node:http";
import { join, normalize } from "node:path";
import { after, before, describe, test } from "node:test";

import { launchBrowser, REGULAR_USER_AGENT } from "./lib/browser.mjs";
import { DEMO_WRITE_KEY, ROOT, startWorker } from "./lib/worker.mjs";
import { eventually, identifiers, metrics, profile, uid } from "./collector_common.mjs";

const BUNDLES = join(ROOT, "node_modules/@segment/analytics-next/dist/umd");
const PAGE_HOST = "www.shop.test";
const COLLECTOR_HOST = "t.shop.test";

/** The test page: loads the bundle, then runs `window.weftRun(options)` when asked. */
const PAGE = `<!doctype html>
<html><head><title>analytics-next against weft</title>
<script src="/analytics-next/bundles/index.js"></script>
<script>
  window.weftRun = async ({ writeKey, apiHost, cdnURL, userId, batching }) => {
    const integrations = { "Segment.io": { apiHost, protocol: "http" } };
    if (batching) {
      integrations["Segment.io"].deliveryStrategy = {
        strategy: "batching",
        config: { size: 5, timeout: 200 },
      };
    }
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      {
        writeKey,
        cdnURL,
        cdnSettings: {
          integrations: { "Segment.io": { apiKey: writeKey } },
          plan: {},
          metrics: { sampleRate: 0 },
        },
      },
      { integrations, retryQueue: true },
    );
    const anonymousId = analytics.user().anonymousId();
    await analytics.page("Pricing", { path: "/pricing" });
    await analytics.track("Product Added", { sku: "A-1", price: 19.99 });
    await analytics.identify(userId, { email: userId + "@example.com", plan: "pro" });
    await analytics.group("acme", { name: "Acme" });
    await analytics.alias(userId, anonymousId);
    return anonymousId;
  };
</script></head>
<body><h1>shop</h1></body></html>`;

/** Serves the page and the bundle directory on 127.0.0.1. */
async function servePage() {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(PAGE);
    }
    const prefix = "/analytics-next/bundles/";
    const file = path.startsWith(prefix) && normalize(join(BUNDLES, path.slice(prefix.length)));
    if (file && file.startsWith(BUNDLES) && existsSync(file)) {
      res.writeHead(200, { "content-type": "text/javascript" });
      return createReadStream(file).pipe(res);
    }
    res.writeHead(404).end();
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return server;
}

describe("@segment/analytics-next in headless Chromium", () => {
  let worker;
  let server;
  let browser;
  before(async () => {
    [worker, server, browser] = await Promise.all([
      startWorker(),
      servePage(),
      launchBrowser({ userAgent: REGULAR_USER_AGENT, hostRules: "MAP *.shop.test 127.0.0.1" }),
    ]);
  });
  after(async () => {
    await browser?.close();
    server?.close();
    await worker?.stop();
  });

  /** Opens the page, runs the calls, and returns the anonymous id and what the page sent. */
  async function run(userId, batching) {
    const page = await browser.context.newPage();
    const pageOrigin = `http://${PAGE_HOST}:${server.address().port}`;
    const collector = `${COLLECTOR_HOST}:${worker.port}`;
    const elsewhere = [];
    const posted = [];
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.host === `${PAGE_HOST}:${server.address().port}` || url.host === collector) {
        if (url.host === collector) {
          posted.push({
            path: url.pathname,
            type: route.request().headers()["content-type"],
          });
        }
        return route.continue();
      }
      elsewhere.push(url.href);
      return route.abort();
    });
    // Each run is a new visitor: no ids left by the previous one.
    await browser.context.clearCookies();
    await page.goto(`${pageOrigin}/`);
    await page.evaluate(() => localStorage.clear());
    const anonymousId = await page.evaluate(
      (options) => window.weftRun(options),
      {
        writeKey: DEMO_WRITE_KEY,
        apiHost: `${collector}/v1`,
        cdnURL: pageOrigin,
        userId,
        batching,
      },
    );
    await page.close();
    return { anonymousId, elsewhere, posted };
  }

  test("events land on the one-letter routes, stored and stitched", async () => {
    const userId = uid("next-user");
    const before = await metrics(worker.url);
    const { anonymousId, elsewhere, posted } = await run(userId, false);

    assert.deepEqual(elsewhere, [], "no request left loopback (no cdn, no metrics)");
    assert.ok(anonymousId, "analytics-next made up an anonymous id");
    const paths = [...new Set(posted.map((p) => p.path))].sort();
    assert.deepEqual(paths, ["/v1/a", "/v1/g", "/v1/i", "/v1/p", "/v1/t"]);
    assert.ok(posted.every((p) => /^text\/plain/.test(p.type)), JSON.stringify(posted));

    const stored = await eventually(async () => {
      const m = await metrics(worker.url);
      return m.accepted - before.accepted >= 5 ? m : null;
    });
    assert.equal(stored.accepted - before.accepted, 5, "page, track, identify, group, alias");
    assert.equal(stored.rejectedTotal - before.rejectedTotal, 0);

    const found = await profile(worker.url, `user_id:${userId}`);
    const held = identifiers(found);
    assert.ok(held.includes(`anonymous_id:${anonymousId}`), `stitched: ${held}`);
    assert.ok(held.includes(`email:${userId}@example.com`));
    assert.equal(found.traits.plan, "pro");
    assert.equal(found.account, "acme");
    assert.equal(found.bot, false, "a regular user agent is a visitor");
    assert.equal(found.events, 5);
  });

  test("its batching mode posts to /v1/b, stored and stitched the same way", async () => {
    const userId = uid("next-batch-user");
    const before = await metrics(worker.url);
    const { anonymousId, elsewhere, posted } = await run(userId, true);
    assert.deepEqual(elsewhere, []);
    const stored = await eventually(async () => {
      const m = await metrics(worker.url);
      return m.accepted - before.accepted >= 5 ? m : null;
    });
    assert.equal(stored.accepted - before.accepted, 5);
    assert.deepEqual([...new Set(posted.map((p) => p.path))], ["/v1/b"]);
    const found = await profile(worker.url, `anonymous_id:${anonymousId}`);
    assert.ok(identifiers(found).includes(`user_id:${userId}`));
  });
});

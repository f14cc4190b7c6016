// The SDK's budgets: what a page downloads (snippet + loader and glue + wasm, gzip -9)
// against the peers' browser bundles installed by npm, measured in the same run; and no
// main-thread task over 50 ms while a page loads the SDK and sends its first page view.
//
// Needs the built SDK (scripts/build-sdk.sh; `make test` builds it first).

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { pageUrl, ROOT, sdkBuilt, sdkReady, startSite } from "./sdk_support.mjs";

const gz = (path) => gzipSync(readFileSync(join(ROOT, path)), { level: 9 }).length;

const PEERS = ["node_modules/@segment/analytics-next/dist/umd/standalone.js"];

describe("sdk budgets", { skip: !sdkBuilt() && "SDK not built: run scripts/build-sdk.sh" }, () => {
  test("the SDK is smaller than every peer bundle measured", () => {
    const parts = {
      snippet: gz("www/snippet.min.js"),
      "loader+glue": gz("www/sdk/pkg/weft.js"),
      wasm: gz("www/sdk/pkg/weft_sdk_bg.wasm"),
    };
    const ours = Object.values(parts).reduce((a, b) => a + b, 0);
    const peers = PEERS.filter((p) => existsSync(join(ROOT, p))).map((p) => [p, gz(p)]);
    console.log(`weft sdk ${ours} B gzipped (${JSON.stringify(parts)})`);
    for (const [p, size] of peers) console.log(`peer ${p} ${size} B gzipped`);
    assert.ok(parts.snippet < 1024, `snippet ${parts.snippet} B, budget 1 KB`);
    assert.ok(peers.length > 0, "no peer bundle installed (npm ci)");
    for (const [p, size] of peers) assert.ok(ours < size, `${ours} B is not smaller than ${p}`);
  });

  describe("in Chromium", () => {
    let site;
    let browser;
    before(async () => {
      site = await startSite();
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await site?.stop();
    });

    test("no main-thread task over 50 ms while the SDK loads and sends", async () => {
      const page = await browser.context.newPage();
      const watch = `window.__longTasks = [];
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) window.__longTasks.push(e.duration);
        }).observe({ type: "longtask", buffered: true });`;
      await page.goto(pageUrl(site.url, "budget", { flushInterval: 50 }, { before: watch, pageview: true }));
      await sdkReady(page);
      await site.waitFor(() => site.events.length >= 1);
      await new Promise((r) => setTimeout(r, 300));
      const tasks = await page.evaluate(() => window.__longTasks);
      console.log(`long tasks during load: ${JSON.stringify(tasks)}`);
      assert.deepEqual(tasks.filter((d) => d > 50), []);
    });
  });
});

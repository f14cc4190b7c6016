// The whole path for real, from the browser: the demo site served by the built worker under
// `wrangler dev`, the snippet and the wasm SDK in headless Chromium, the collector, the
// identity graph, the `paid-pricing-interest` segment and the decision the page shows.
//
// Needs the built worker and SDK (`make build`); each run has its own port and storage.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { launchBrowser, REGULAR_USER_AGENT } from "./lib/browser.mjs";
import { ROOT, startWorker } from "./lib/worker.mjs";
import { sdkBuilt, sdkReady } from "./sdk_support.mjs";

const built = existsSync(join(ROOT, "crates/edge/build/index.js")) && sdkBuilt();

describe("demo site end to end", { skip: !built && "worker or SDK not built: make build" }, () => {
  let worker;
  let browser;
  before(async () => {
    worker = await startWorker();
    browser = await launchBrowser({ userAgent: REGULAR_USER_AGENT });
  });
  after(async () => {
    await browser?.close();
    await worker?.stop();
  });

  test("a paid-search visitor who views pricing twice sees paid-pricing-interest", async () => {
    const page = await browser.context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));

    await page.goto(`${worker.url}/?utm_source=google&utm_medium=cpc&utm_campaign=spring`);
    await sdkReady(page);
    const anonymousId = await page.evaluate(() => weft.user().anonymousId);
    for (let i = 0; i < 2; i++) {
      await page.goto(`${worker.url}/pricing`);
      await sdkReady(page);
    }
    await page.evaluate(() => {
      weft.identify("user-1");
      weft.flush();
    });
    await page.waitForFunction(() => weft.stats().delivered >= 1 && weft.stats().waiting === 0);

    await page.reload();
    await page.waitForFunction(
      () => document.getElementById("segments").textContent.includes("paid-pricing-interest"),
      null,
      { timeout: 30000 },
    );
    assert.equal(await page.locator("#anon").textContent(), anonymousId);
    assert.deepEqual(errors, []);

    const res = await fetch(`${worker.url}/admin/profiles?id=user_id:user-1`, {
      headers: { authorization: "Bearer demo-admin-token" },
    });
    assert.equal(res.status, 200);
    const profile = JSON.stringify(await res.json());
    assert.ok(profile.includes(anonymousId), profile.slice(0, 2000));
    assert.ok(profile.includes("paid-pricing-interest"), profile.slice(0, 2000));
  });
});

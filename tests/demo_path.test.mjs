//! The whole path in a real browser: the demo site's snippet loads the SDK in headless
//! Chromium, a visitor lands from a paid-search campaign, views the pricing page twice and
//! signs in; the collector stores and stitches their events, the Durable Object puts them
//! in `paid-pricing-interest`, the page shows it from `/v1/decide`, and the next pricing
//! page arrives already personalised in its HTML source (HTMLRewriter at the edge).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { launchBrowser, REGULAR_USER_AGENT } from "./lib/browser.mjs";
import { startWorker } from "./lib/worker.mjs";

const ADMIN = { authorization: "Bearer demo-admin-token" };

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

async function segmentsShown(page) {
  return (await page.locator("#segments").textContent()) ?? "";
}

test("land from a campaign, view pricing twice, sign in: segment decided and shown", async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const user = `user-${process.pid}`;

  await page.goto(`${worker.url}/?utm_source=google&utm_medium=cpc&utm_campaign=spring`);
  await page.waitForFunction(() => window.weft && typeof window.weft.user === "function");
  const anonymousId = await page.evaluate(() => window.weft.user().anonymousId);
  assert.match(anonymousId, /\S{8,}/);

  for (let i = 0; i < 2; i++) {
    await page.goto(`${worker.url}/pricing`);
    await page.waitForFunction(() => window.weft && typeof window.weft.user === "function");
  }
  await page.evaluate((id) => {
    window.weft.identify(id);
    window.weft.flush();
  }, user);

  // The profile is stitched: the user id holds the browser's anonymous id and the segment.
  let profile;
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${worker.url}/admin/profiles?id=user_id:${user}`, { headers: ADMIN });
    profile = await res.json();
    if (res.ok && profile.segments?.includes("paid-pricing-interest")) break;
    await sleep(200);
  }
  const ids = profile.identifiers.map((h) => h.id);
  assert.ok(ids.includes(`anonymous_id:${anonymousId}`), JSON.stringify(ids));
  assert.ok(ids.includes(`user_id:${user}`));
  assert.deepEqual(profile.segments, ["paid-pricing-interest"]);
  assert.equal(profile.touchpoints.first.medium, "cpc");
  assert.equal(profile.touchpoints.first.campaign, "spring");
  assert.equal(profile.bot, false);

  // Reload: the demo page shows the segment from /v1/decide. The doc may trail the
  // profile by up to a second (KV takes one write per key per second; the object's alarm
  // flushes the coalesced write), so the page polls until it shows.
  await page.goto(`${worker.url}/pricing`);
  await page.waitForFunction(
    () => document.getElementById("segments")?.textContent.includes("paid-pricing-interest"),
    null,
    { timeout: 10_000 },
  );
  assert.match(await segmentsShown(page), /paid-pricing-interest/);
  assert.equal(await page.locator("#anon").textContent(), anonymousId);
  assert.deepEqual(errors, [], "no script error on any page");

  // The next page's HTML source itself is personalised, before any script runs.
  const personalised = await page.goto(`${worker.url}/pricing`);
  const source = await personalised.text();
  assert.match(source, /SPRING20/);
  assert.match(source, /<body[^>]*data-weft-offer="paid-pricing-interest"/);
  assert.equal(await page.locator("#weft-offer").getAttribute("data-segment"), "paid-pricing-interest");
  await page.close();
});

test("a new visitor gets the plain page and no offer", async () => {
  const other = await launchBrowser({ userAgent: REGULAR_USER_AGENT });
  try {
    const page = await other.context.newPage();
    const res = await page.goto(`${worker.url}/pricing`);
    const source = await res.text();
    assert.doesNotMatch(source, /SPRING20/);
    assert.match(source, /<aside id="weft-offer" hidden><\/aside>/);
    const cookies = await other.context.cookies(worker.url);
    const sid = cookies.find((c) => c.name === "weft_sid");
    assert.ok(sid?.httpOnly, "the worker set its own HttpOnly id cookie on the page");
  } finally {
    await other.close();
  }
});

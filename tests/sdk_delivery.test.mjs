// The SDK's delivery in headless Chromium against a collector that fails on demand
// (tests/sdk_support.mjs): nothing lost, nothing sent twice, bounded when offline,
// page exit within the keepalive budget, several tabs.
//
// Needs the built SDK (scripts/build-sdk.sh; `make test` builds it first).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { pageUrl, sdkBuilt, sdkReady, startSite } from "./sdk_support.mjs";

const FAST = { retryBase: 200, retryMax: 800, flushInterval: 100 };

describe("sdk delivery", { skip: !sdkBuilt() && "SDK not built: run scripts/build-sdk.sh" }, () => {
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

  async function open(name, cfg = FAST, extra = {}) {
    const page = await browser.context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.errors = errors;
    await page.goto(pageUrl(site.url, name, cfg, extra));
    await sdkReady(page);
    return page;
  }

  // Every test starts with no page open, empty storage and an empty collector record.
  async function reset() {
    for (const p of browser.context.pages()) await p.close();
    const blank = await browser.context.newPage();
    await blank.goto(site.url + "/no-sdk-here"); // a 404 page: same origin, no SDK
    await blank.evaluate(() => localStorage.clear());
    await blank.close();
    await browser.context.clearCookies();
    site.mode = "ok";
    site.requests.length = 0;
    site.events.length = 0;
  }

  test("collector down then up: every event arrives exactly once", async () => {
    await reset();
    site.mode = "down";
    const page = await open("down-up");
    await page.evaluate(() => {
      weft.page();
      for (let i = 0; i < 5; i++) weft.track("Step " + i);
    });
    await site.waitFor(() => site.requests.length >= 3);
    assert.equal(site.events.length, 0);
    site.mode = "ok";
    await site.waitFor(() => site.events.length >= 6);
    await new Promise((r) => setTimeout(r, 1500));
    const counts = site.counts();
    assert.equal(counts.size, 6);
    assert.deepEqual([...counts.values()], [1, 1, 1, 1, 1, 1]);
    const stats = await page.evaluate(() => weft.stats());
    assert.equal(stats.waiting + stats.inFlight, 0);
    assert.equal(stats.delivered, 6);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("429 waits for Retry-After before the next attempt", async () => {
    await reset();
    site.mode = "429";
    site.retryAfter = "2";
    const page = await open("rate-limited");
    await page.evaluate(() => weft.track("Limited"));
    await site.waitFor(() => site.requests.length >= 1);
    const first = Date.now();
    site.mode = "ok";
    await site.waitFor(() => site.events.length >= 1, 10000);
    const waited = Date.now() - first;
    assert.ok(waited >= 1800, `retried after ${waited} ms, Retry-After said 2 s`);
    assert.equal(site.requests.length, 2);
    await page.close();
  });

  test("other 4xx answers are not retried", async () => {
    await reset();
    site.mode = "400";
    const page = await open("refused");
    await page.evaluate(() => weft.track("Refused"));
    await site.waitFor(() => site.requests.length >= 1);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(site.requests.length, 1);
    const stats = await page.evaluate(() => weft.stats());
    assert.equal(stats.refused, 1);
    assert.equal(stats.waiting + stats.inFlight, 0);
    await page.close();
  });

  test("requests are text/plain Segment batches with sentAt and the write key", async () => {
    await reset();
    const page = await open("shape");
    await page.evaluate(() => weft.track("Shaped", { plan: "team" }));
    await site.waitFor(() => site.events.length >= 1);
    const request = site.requests.find((r) => r.body);
    assert.match(request.contentType, /^text\/plain/);
    assert.equal(request.body.writeKey, "demo-write-key");
    assert.match(request.body.sentAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const [event] = request.body.batch;
    assert.equal(event.type, "track");
    assert.equal(event.event, "Shaped");
    assert.deepEqual(event.properties, { plan: "team" });
    assert.match(event.messageId, /^[0-9a-f-]{36}$/);
    assert.ok(event.anonymousId && event.timestamp);
    assert.equal(event.context.library.name, "weft-sdk");
    assert.ok(event.context.userAgent);
    assert.equal(event.context.session.count, 1);
    await page.close();
  });

  test("bounded-offline-queue", async () => {
    await reset();
    site.mode = "down";
    const cfg = { ...FAST, retryBase: 60000, retryMax: 60000, maxEvents: 1000, maxBytes: 1000000 };
    const page = await open("offline", cfg);
    const result = await page.evaluate(async () => {
      const pad = "x".repeat(1400);
      for (let i = 0; i < 5000; i++) weft.track("Offline " + i, { pad });
      await new Promise((r) => setTimeout(r, 300));
      let hostWrite = "ok";
      try {
        localStorage.setItem("host-page-data", "h".repeat(1000000));
      } catch (e) {
        hostWrite = e.name;
      }
      let stored = 0;
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key.startsWith("weft_q:")) stored += localStorage.getItem(key).length;
      }
      return { stats: weft.stats(), hostWrite, stored };
    });
    assert.equal(result.hostWrite, "ok");
    const held = result.stats.waiting + result.stats.inFlight;
    assert.ok(held <= 1000, `${held} events held`);
    assert.ok(result.stats.bytes <= 1000000, `${result.stats.bytes} bytes held`);
    assert.equal(result.stats.dropped, 5000 - held);
    assert.ok(result.stored > 0 && result.stored < 1200000, `${result.stored} chars stored`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("unload-beacon-over-quota: a navigation away mid-batch loses nothing", async () => {
    await reset();
    const cfg = { ...FAST, flushAt: 1000, flushInterval: 60000 };
    const page = await open("exit", cfg);
    await page.evaluate(() => {
      const pad = "y".repeat(2900);
      for (let i = 1; i <= 30; i++) weft.track("Big " + i, { pad });
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(site.requests.length, 0, "nothing sent before the page exit");

    await page.goto(pageUrl(site.url, "exit-next", cfg));
    await sdkReady(page);
    await site.waitFor(() => site.counts().size >= 30, 20000);
    const names = new Set(site.events.map((e) => e.event));
    assert.equal(names.size, 30);
    for (const r of site.requests) assert.ok(r.bytes <= 65536, `a request of ${r.bytes} bytes`);
    assert.ok(site.requests.length >= 2, "the 90 KB outbox went out in several requests");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("two tabs never send the same messageId", async () => {
    await reset();
    site.mode = "down";
    const a = await open("tab-a");
    const b = await open("tab-b");
    const tabs = await Promise.all([a, b].map((p) => p.evaluate(() => weft.stats().tab)));
    assert.notEqual(tabs[0], tabs[1]);
    await a.evaluate(() => { for (let i = 0; i < 10; i++) weft.track("A " + i); });
    await b.evaluate(() => { for (let i = 0; i < 10; i++) weft.track("B " + i); });
    await site.waitFor(() => site.requests.length >= 2);
    await a.close({ runBeforeUnload: true });
    const c = await open("tab-c");
    site.mode = "ok";
    await site.waitFor(() => site.counts().size >= 20, 20000);
    await new Promise((r) => setTimeout(r, 4000));
    const twice = [...site.counts()].filter(([, n]) => n > 1);
    assert.deepEqual(twice, []);
    assert.equal(site.counts().size, 20);
    await b.close();
    await c.close();
  });
});

// The SDK's ids, campaign and consent in headless Chromium, against the test collector of
// tests/sdk_support.mjs: the `sdk` field reports of shared/cases as tests named after
// them, plus two subdomains served on loopback (`*.shop.test` mapped to 127.0.0.1).
//
// Needs the built SDK (scripts/build-sdk.sh; `make test` builds it first).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { pageUrl, sdkBuilt, sdkReady, startSite } from "./sdk_support.mjs";

const FAST = { flushInterval: 50, retryBase: 200 };

describe("sdk identity", { skip: !sdkBuilt() && "SDK not built: run scripts/build-sdk.sh" }, () => {
  let site;
  let browser;
  before(async () => {
    site = await startSite();
    browser = await launchBrowser({ hostRules: "MAP *.shop.test 127.0.0.1" });
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
  });

  const on = (host) => `http://${host}:${site.port}`;

  async function fresh() {
    for (const p of browser.context.pages()) await p.close();
    await browser.context.clearCookies();
    for (const host of ["127.0.0.1", "app.shop.test", "www.shop.test"]) {
      const blank = await browser.context.newPage();
      await blank.goto(on(host) + "/no-sdk-here");
      await blank.evaluate(() => {
        localStorage.clear();
        sessionStorage.clear();
      });
      await blank.close();
    }
    site.mode = "ok";
    site.requests.length = 0;
    site.events.length = 0;
  }

  async function open(base, name, cfg = FAST, extra = {}) {
    const page = await browser.context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(e.message));
    await page.goto(pageUrl(base, name, cfg, extra));
    await sdkReady(page);
    return page;
  }

  const eventsNamed = (name) => site.events.filter((e) => (e.event || e.type) === name);

  test("subdomain-anonid-resync", async () => {
    await fresh();
    await browser.context.addCookies([
      { name: "ajs_anonymous_id", value: "anon-shared", domain: ".shop.test", path: "/" },
    ]);
    const app = await open(on("app.shop.test"), "app", FAST, {
      before: "localStorage.setItem('ajs_anonymous_id', 'anon-stale')",
    });
    await app.evaluate(() => weft.track("Viewed Dashboard"));
    await site.waitFor(() => eventsNamed("Viewed Dashboard").length === 1);
    assert.equal(eventsNamed("Viewed Dashboard")[0].anonymousId, "anon-shared");
    assert.equal(await app.evaluate(() => localStorage.getItem("weft_aid")), "anon-shared");
    const cookies = await browser.context.cookies(on("app.shop.test"));
    const value = (name) => cookies.filter((c) => c.name === name).map((c) => [c.value, c.domain]);
    assert.deepEqual(value("ajs_anonymous_id"), [["anon-shared", ".shop.test"]]);
    assert.deepEqual(value("weft_aid"), [["anon-shared", ".shop.test"]]);

    const www = await open(on("www.shop.test"), "www", FAST, { pageview: true });
    await site.waitFor(() => eventsNamed("page").length === 1);
    assert.equal(eventsNamed("page")[0].anonymousId, "anon-shared");
    assert.equal(await www.evaluate(() => localStorage.getItem("weft_aid")), "anon-shared");
  });

  test("cookie and localStorage disagreeing across two subdomains give one anonymous id", async () => {
    await fresh();
    const first = await open(on("app.shop.test"), "first", FAST, { pageview: true });
    const id = await first.evaluate(() => weft.user().anonymousId);
    await first.close();
    const seen = [];
    for (const host of ["www.shop.test", "app.shop.test"]) {
      const page = await open(on(host), "diverged", FAST, {
        before: `localStorage.setItem('weft_aid', '"stale-${host}"')`,
      });
      seen.push(await page.evaluate(() => [weft.user().anonymousId, localStorage.weft_aid]));
      await page.close();
    }
    assert.deepEqual(seen, [
      [id, id],
      [id, id],
    ]);
  });

  test("stored-id-parse-tolerant", async () => {
    const cases = [
      { local: ["ajs_anonymous_id", '"anon-123"'], want: "anon-123" },
      { local: ["ajs_anonymous_id", "anon-123"], want: "anon-123" },
      { cookie: ["ajs_anonymous_id", "%22anon-123%22"], want: "anon-123" },
      { cookie: ["ajs_anonymous_id", "anon-123"], want: "anon-123" },
      { cookie: ["__anon_id", "1724633695283.638279"], want: "1724633695283.638279" },
      { cookie: ["__anon_id", "00123"], want: "00123" },
    ];
    for (const c of cases) {
      await fresh();
      if (c.cookie) {
        const [name, value] = c.cookie;
        await browser.context.addCookies([{ name, value, url: site.url }]);
      }
      const before = c.local
        ? `localStorage.setItem(${JSON.stringify(c.local[0])}, ${JSON.stringify(c.local[1])})`
        : "";
      const page = await open(site.url, "tolerant", FAST, { before });
      await page.evaluate(() => weft.track("Loaded"));
      await site.waitFor(() => eventsNamed("Loaded").length === 1);
      const label = JSON.stringify(c);
      const event = eventsNamed("Loaded")[0];
      assert.equal(typeof event.anonymousId, "string", label);
      assert.equal(event.anonymousId, c.want, label);
      const stored = await page.evaluate(() => [localStorage.weft_aid, document.cookie]);
      assert.equal(stored[0], c.want, label);
      assert.match(stored[1], new RegExp(`weft_aid=${c.want.replace(/\./g, "\\.")}(;|$)`), label);
      assert.deepEqual(page.errors, [], label);
    }
  });

  test("set-anon-id-before-first-event", async () => {
    await fresh();
    const page = await open(site.url, "set-anon", FAST, {
      after: "weft.setAnonymousId('anon-fixed-1'); weft.track('EVENT_1'); weft.track('EVENT_2');",
    });
    await site.waitFor(() => site.events.length >= 2);
    assert.deepEqual(
      site.events.map((e) => [e.event, e.anonymousId]),
      [
        ["EVENT_1", "anon-fixed-1"],
        ["EVENT_2", "anon-fixed-1"],
      ],
    );
    const stored = await page.evaluate(() => [localStorage.weft_aid, document.cookie]);
    assert.equal(stored[0], "anon-fixed-1");
    assert.match(stored[1], /weft_aid=anon-fixed-1/);
  });

  test("storage-throws-fallback", async () => {
    await fresh();
    const breakStorage = `
      for (const m of ["getItem", "setItem", "removeItem", "key", "clear"]) {
        Storage.prototype[m] = function () {
          throw new DOMException("blocked", m === "setItem" ? "QuotaExceededError" : "SecurityError");
        };
      }
      Object.defineProperty(Document.prototype, "cookie", { get() { return ""; }, set() {} });`;
    const page = await open(site.url, "no-storage", FAST, { before: breakStorage, pageview: true });
    await page.evaluate(() => weft.track("Signup Started"));
    await site.waitFor(() => site.events.length >= 2);
    const [viewed, signup] = site.events;
    assert.equal(viewed.type, "page");
    assert.equal(signup.event, "Signup Started");
    assert.ok(viewed.anonymousId);
    assert.equal(signup.anonymousId, viewed.anonymousId);
    assert.equal(signup.context.idStorage, "memory");
    assert.deepEqual(page.errors, []);
    assert.equal((await page.evaluate(() => weft.stats())).persistent, false);
  });

  test("utm-from-explicit-page-search", async () => {
    await fresh();
    const page = await open(site.url, "app");
    const landing = "https://shop.example.com/landing?utm_source=newsletter&utm_content=hero";
    await page.evaluate((url) => {
      weft.page({ url, search: "?utm_source=newsletter&utm_content=hero" });
      weft.page({ url }, { context: { campaign: { source: "explicit" } } });
    }, landing);
    await site.waitFor(() => site.events.length >= 2);
    const [derived, explicit] = site.events;
    assert.deepEqual(derived.context.campaign, { source: "newsletter", content: "hero" });
    assert.equal(derived.context.page.url, landing);
    assert.equal(derived.context.page.path, "/landing");
    assert.deepEqual(explicit.context.campaign, { source: "explicit" });
  });

  test("campaign, click id and session come from the landing URL", async () => {
    await fresh();
    await open(site.url, "landing", FAST, {
      pageview: true,
      query: { utm_source: "google", utm_medium: "cpc", utm_campaign: "spring sale", gclid: "g1" },
    });
    await site.waitFor(() => site.events.length >= 1);
    const [event] = site.events;
    assert.deepEqual(event.context.campaign, {
      source: "google",
      medium: "cpc",
      name: "spring sale",
      gclid: "g1",
    });
    assert.equal(event.context.session.start, true);
    assert.equal(event.context.session.count, 1);
  });

  test("identify, alias, group, reset and user()", async () => {
    await fresh();
    const page = await open(site.url, "people");
    const result = await page.evaluate(() => {
      const before = weft.user().anonymousId;
      weft.identify("user-1", { plan: "team" });
      weft.identify({ email: "a@example.com" });
      weft.group("acct-1", { name: "Acme" });
      weft.alias("user-1b");
      const during = weft.user();
      weft.reset();
      return { before, during, after: weft.user() };
    });
    assert.equal(result.during.userId, "user-1b");
    assert.deepEqual(result.during.traits, { plan: "team", email: "a@example.com" });
    assert.notEqual(result.after.anonymousId, result.before);
    assert.equal(result.after.userId, null);
    await site.waitFor(() => site.events.length >= 4);
    const [identify, identify2, group, alias] = site.events;
    assert.equal(identify.userId, "user-1");
    assert.deepEqual(identify.traits, { plan: "team" });
    assert.equal(identify2.userId, "user-1");
    assert.equal(group.groupId, "acct-1");
    assert.equal(alias.userId, "user-1b");
    assert.equal(alias.previousId, "user-1", "previousId defaults to the current user id");
  });

  test("consent pending holds events in memory; granted sends; denied stores nothing", async () => {
    await fresh();
    const page = await open(site.url, "consent", { ...FAST, consent: "pending" }, { pageview: true });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(site.requests.length, 0);
    assert.deepEqual(await page.evaluate(() => [document.cookie, localStorage.length]), ["", 0]);
    await page.evaluate(() => weft.consent("granted"));
    await site.waitFor(() => site.events.length === 1);
    assert.match(await page.evaluate(() => document.cookie), /weft_aid=/);

    await page.evaluate(() => {
      weft.consent("denied");
      weft.track("After denial");
    });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(site.events.length, 1);
    const left = await page.evaluate(() => [document.cookie, Object.keys(localStorage)]);
    assert.equal(left[0], "");
    assert.deepEqual(left[1], []);
  });

  test("global privacy control denies by default and can be ignored by a setting", async () => {
    await fresh();
    const gpc = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })";
    const honoured = await open(site.url, "gpc", FAST, { before: gpc, pageview: true });
    assert.equal((await honoured.evaluate(() => weft.stats())).consent, "denied");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(site.events.length, 0);
    await honoured.close();
    const ignored = await open(site.url, "gpc-off", { ...FAST, gpc: false }, {
      before: gpc,
      pageview: true,
    });
    assert.equal((await ignored.evaluate(() => weft.stats())).consent, "granted");
    await site.waitFor(() => site.events.length === 1);
  });
});

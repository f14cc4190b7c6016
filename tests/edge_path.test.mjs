//! The edge path end to end on the local Workers runtime: a Segment-spec batch is stored
//! and stitched, its decision is served from KV, user ids need their hash, explain shows
//! why, segment definitions over the admin API are validated and backfilled, merges are
//! explained and undone, erasure removes a person, and the first HTML response is
//! personalised for members of the demo segment.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { startWorker } from "./lib/worker.mjs";

const BROWSER_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
  "Chrome/124.0 Safari/537.36";
const ADMIN = { authorization: "Bearer demo-admin-token" };

let worker;
let run = 0;

before(async () => {
  worker = await startWorker();
});
after(async () => {
  await worker?.stop();
});

/** A unique id for this test run, so tests never share visitors. */
function uid(name) {
  run += 1;
  return `${name}-${process.pid}-${run}`;
}

async function post(path, body, headers = {}) {
  const res = await fetch(`${worker.url}${path}`, {
    method: "POST",
    headers: { "content-type": "text/plain", "user-agent": BROWSER_UA, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function get(path, headers = {}) {
  const res = await fetch(`${worker.url}${path}`, { headers });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

/** The three page views that put a visitor in `paid-pricing-interest`. */
function paidPricingVisit(anonymousId, prefix) {
  return [
    {
      type: "page",
      messageId: `${prefix}-land`,
      anonymousId,
      context: {
        page: { path: "/", search: "?utm_source=google&utm_medium=cpc&utm_campaign=spring" },
        campaign: { source: "google", medium: "cpc", name: "spring" },
        userAgent: BROWSER_UA,
      },
    },
    { type: "page", messageId: `${prefix}-p1`, anonymousId, context: { page: { path: "/pricing" }, userAgent: BROWSER_UA } },
    { type: "page", messageId: `${prefix}-p2`, anonymousId, context: { page: { path: "/pricing" }, userAgent: BROWSER_UA } },
  ];
}

const hash = (userId, secret = "demo-identity-secret") =>
  createHmac("sha256", secret).update(userId).digest("hex");

describe("edge path", () => {
  test("a batch is stored, stitched and decided; the answer names rejected events", async () => {
    const anon = uid("anon");
    const user = uid("user");
    const batch = [
      ...paidPricingVisit(anon, anon),
      { type: "identify", messageId: `${anon}-id`, anonymousId: anon, userId: user, traits: { plan: "pro" } },
      { type: "purchase", messageId: `${anon}-bad`, anonymousId: anon },
    ];
    const res = await post("/v1/batch", { writeKey: "demo-write-key", batch });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.accepted, 4);
    assert.deepEqual(res.body.rejected.map((r) => [r.index, r.messageId]), [[4, `${anon}-bad`]]);
    assert.match(res.body.rejected[0].error, /unknown event type "purchase"/);
    assert.match(res.headers.get("set-cookie") ?? "", /weft_sid=[0-9a-f]{32};.*HttpOnly/);

    const decision = await get(`/v1/decide?anonymousId=${anon}`);
    assert.equal(decision.status, 200);
    assert.deepEqual(decision.body.segments, ["paid-pricing-interest"]);
    assert.ok(decision.body.version >= 1);
    assert.ok(decision.body.validUntil, "a windowed rule lapses, so validUntil is set");

    const profile = await get(`/admin/profiles?id=user_id:${user}`, ADMIN);
    assert.equal(profile.status, 200, JSON.stringify(profile.body));
    const ids = profile.body.identifiers.map((i) => i.id).sort();
    assert.deepEqual(ids, [`anonymous_id:${anon}`, `user_id:${user}`].sort());
    assert.deepEqual(profile.body.segments, ["paid-pricing-interest"]);
    assert.equal(profile.body.traits.plan, "pro");
    assert.equal(profile.body.touchpoints.first.medium, "cpc");
  });

  test("user ids are readable only with a valid userHash", async () => {
    const anon = uid("anon");
    const user = uid("user");
    await post("/v1/batch", {
      writeKey: "demo-write-key",
      batch: [...paidPricingVisit(anon, anon), { type: "identify", messageId: `${anon}-i`, anonymousId: anon, userId: user }],
    });
    const ok = await get(`/v1/decide?userId=${user}&userHash=${hash(user)}`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.segments, ["paid-pricing-interest"]);
    for (const query of [`userId=${user}`, `userId=${user}&userHash=${hash(user, "wrong")}`, `userId=${user}&userHash=zz`]) {
      const refused = await get(`/v1/decide?${query}`);
      assert.equal(refused.status, 403, query);
      assert.match(refused.body.error, /userHash/);
    }
  });

  test("explain needs the admin token and shows the values that decided", async () => {
    const anon = uid("anon");
    await post("/v1/batch", { writeKey: "demo-write-key", batch: paidPricingVisit(anon, anon) });
    const refused = await get(`/v1/decide?anonymousId=${anon}&explain=1`);
    assert.equal(refused.status, 401);
    const explained = await get(`/v1/decide?anonymousId=${anon}&explain=1`, ADMIN);
    assert.equal(explained.status, 200, JSON.stringify(explained.body));
    const paid = explained.body.explain["paid-pricing-interest"];
    assert.equal(paid.member, true);
    assert.match(JSON.stringify(paid.rule), /cpc/);
  });

  test("a segment stored over the API is validated, backfilled and can be deleted", async () => {
    const anon = uid("anon");
    await post("/v1/batch", {
      writeKey: "demo-write-key",
      batch: [
        { type: "track", event: "Docs Read", messageId: `${anon}-t1`, anonymousId: anon, context: { userAgent: BROWSER_UA } },
        { type: "track", event: "Docs Read", messageId: `${anon}-t2`, anonymousId: anon, context: { userAgent: BROWSER_UA } },
      ],
    });
    const bad = await fetch(`${worker.url}/admin/segments/readers`, {
      method: "PUT",
      headers: ADMIN,
      body: JSON.stringify({ rule: { count: { event: "Docs Read", within: "7 days", gte: 2 } } }),
    });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /within/);

    const put = await fetch(`${worker.url}/admin/segments/readers`, {
      method: "PUT",
      headers: ADMIN,
      body: JSON.stringify({ rule: { count: { event: "Docs Read", within: "7d", gte: 2 } } }),
    });
    assert.equal(put.status, 200, await put.clone().text());
    assert.ok((await put.json()).backfilled >= 1);
    // The first doc of this key was written a moment ago: KV takes one write per key per
    // second, so the backfilled one follows within a second, from the object's alarm.
    await waitFor(async () => (await get(`/v1/decide?anonymousId=${anon}`)).body.segments.includes("readers"));

    // What GET answers is the whole document, and PUTs back as it is.
    const read = await get("/admin/segments/readers", ADMIN);
    assert.equal(read.body.source, "api");
    assert.deepEqual(read.body.definition.rule.count.event, "Docs Read");
    const again = await fetch(`${worker.url}/admin/segments/readers`, {
      method: "PUT",
      headers: ADMIN,
      body: JSON.stringify(read.body.definition),
    });
    assert.equal(again.status, 200, await again.clone().text());
    const fromFile = await get("/admin/segments/paid-pricing-interest", ADMIN);
    assert.equal(fromFile.body.source, "file");
    assert.ok(fromFile.body.definition.rule, JSON.stringify(fromFile.body));

    const listed = await get("/admin/segments", ADMIN);
    const readers = listed.body.segments.find((s) => s.name === "readers");
    assert.equal(readers.source, "api");
    assert.equal(listed.body.segments.find((s) => s.name === "paid-pricing-interest").source, "file");

    const removed = await fetch(`${worker.url}/admin/segments/readers`, { method: "DELETE", headers: ADMIN });
    assert.equal(removed.status, 200);
    await waitFor(async () => !(await get(`/v1/decide?anonymousId=${anon}`)).body.segments.includes("readers"));
  });

  test("a merge is logged, membership follows it, and undo splits it again", async () => {
    const anonA = uid("anon");
    const anonB = uid("anon");
    const user = uid("user");
    // Device A: identified user. Device B: the paid-search visit, anonymous.
    await post("/v1/batch", {
      writeKey: "demo-write-key",
      batch: [
        { type: "identify", messageId: `${anonA}-i`, anonymousId: anonA, userId: user },
        ...paidPricingVisit(anonB, anonB),
      ],
    });
    assert.deepEqual((await get(`/v1/decide?userId=${user}&userHash=${hash(user)}`)).body.segments, []);

    // Signing in on device B merges the two profiles.
    await post("/v1/identify", { writeKey: "demo-write-key", messageId: `${anonB}-login`, anonymousId: anonB, userId: user });
    const merged = await get(`/admin/profiles?id=user_id:${user}`, ADMIN);
    assert.equal(merged.body.identifiers.length, 3, JSON.stringify(merged.body.identifiers));
    assert.equal(merged.body.merges.length, 1);
    const merge = merged.body.merges[0];
    assert.equal(merge.messageId, `${anonB}-login`);
    await waitFor(async () => (await get(`/v1/decide?userId=${user}&userHash=${hash(user)}`)).body.segments.includes("paid-pricing-interest"));

    const undo = await post(`/admin/merges/${merge.id}/undo`, "", ADMIN);
    assert.equal(undo.status, 200, JSON.stringify(undo.body));
    const userSide = await get(`/admin/profiles?id=user_id:${user}`, ADMIN);
    const otherSide = await get(`/admin/profiles?id=anonymous_id:${anonB}`, ADMIN);
    assert.notEqual(userSide.body.id, otherSide.body.id, "split into two profiles");
    assert.deepEqual(otherSide.body.segments, ["paid-pricing-interest"]);
    await waitFor(async () => (await get(`/v1/decide?userId=${user}&userHash=${hash(user)}`)).body.segments.length === 0);

    // The link stays blocked: the same sign-in again is refused with a warning.
    const again = await post("/v1/identify", { writeKey: "demo-write-key", messageId: `${anonB}-login-2`, anonymousId: anonB, userId: user });
    assert.equal(again.status, 200);
    assert.ok(again.body.warnings.some((w) => /split from this profile by an undo|refused/.test(w.warning)), JSON.stringify(again.body));
  });

  test("one batch that links, merges and repeats itself ends as if sent event by event", async () => {
    // The graph resolves a request's events in memory and writes them back together:
    // the same script sent as one batch and as one request per event must give the same
    // profile, merges, segments and acknowledgements.
    const script = (p) => {
      const at = (n) => new Date(Date.UTC(2026, 10, 1, 12, 0, n)).toISOString();
      return [
        ...paidPricingVisit(`${p}-a1`, `${p}-v1`).map((e, n) => ({ ...e, timestamp: at(n) })),
        { type: "identify", messageId: `${p}-i1`, anonymousId: `${p}-a1`, userId: `${p}-u`, traits: { email: `${p}@Example.com`, plan: "free" }, timestamp: at(5) },
        { type: "page", messageId: `${p}-v2`, anonymousId: `${p}-a2`, context: { page: { path: "/docs" } }, timestamp: at(6) },
        { type: "identify", messageId: `${p}-i2`, anonymousId: `${p}-a2`, userId: `${p}-u`, traits: { plan: "pro" }, timestamp: at(7) },
        { type: "page", messageId: `${p}-v1-land`, anonymousId: `${p}-a1`, timestamp: at(8) },
        { type: "page", messageId: `${p}-v3`, anonymousId: `${p}-a3`, timestamp: at(9) },
        { type: "alias", messageId: `${p}-al`, userId: `${p}-u`, previousId: `${p}-a3`, timestamp: at(10) },
        { type: "identify", messageId: `${p}-i3`, anonymousId: `${p}-a2`, userId: `${p}-other`, timestamp: at(11) },
        { type: "track", messageId: `${p}-t`, anonymousId: `${p}-a2`, event: "Product Added", timestamp: at(12) },
        { type: "page", messageId: `${p}-v2`, anonymousId: `${p}-a2`, timestamp: at(13) },
      ];
    };
    const shape = async (p, answers) => {
      const view = (await get(`/admin/profiles?id=user_id:${p}-u`, ADMIN)).body;
      const text = JSON.stringify({
        identifiers: view.identifiers.map((h) => `${h.id}@${h.firstSeen}`).sort(),
        traits: view.traits,
        events: view.events,
        touchpoints: view.touchpoints,
        segments: view.segments,
        merges: view.merges.map((m) => [m.messageId, m.fromIds.sort(), m.intoIds.sort()]),
        accepted: answers.reduce((n, a) => n + a.accepted, 0),
        warnings: answers.flatMap((a) => a.warnings.map((w) => w.warning)).sort(),
      });
      return JSON.parse(text.replaceAll(p, "P"));
    };
    const batched = uid("batched");
    const one = await post("/v1/batch", { writeKey: "demo-write-key", batch: script(batched) });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    const single = uid("single");
    const answers = [];
    for (const event of script(single)) {
      const res = await post("/v1/batch", { writeKey: "demo-write-key", batch: [event] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      answers.push(res.body);
    }
    const want = await shape(single, answers);
    assert.equal(want.events, 9, JSON.stringify(want));
    assert.equal(want.merges.length, 2, JSON.stringify(want));
    assert.equal(want.accepted, 10, JSON.stringify(want));
    assert.deepEqual(await shape(batched, [one.body]), want);
  });

  test("an operator merge joins two identified users, logged and undoable", async () => {
    const [u1, u2] = [uid("user"), uid("user")];
    await post("/v1/batch", {
      writeKey: "demo-write-key",
      batch: [
        { type: "identify", messageId: `${u1}-i`, userId: u1 },
        { type: "identify", messageId: `${u2}-i`, userId: u2 },
      ],
    });
    const refusedByRules = await post("/v1/alias", { writeKey: "demo-write-key", messageId: `${u1}-alias`, userId: u1, previousId: u2 });
    assert.ok(refusedByRules.body.warnings.some((w) => /both identified/.test(w.warning)), JSON.stringify(refusedByRules.body));

    const merged = await post("/admin/merges", { from: `user_id:${u2}`, into: `user_id:${u1}` }, ADMIN);
    assert.equal(merged.status, 200, JSON.stringify(merged.body));
    assert.equal(merged.body.operator, true);
    const one = await get(`/admin/profiles?id=user_id:${u2}`, ADMIN);
    assert.ok(one.body.identifiers.some((i) => i.id === `user_id:${u1}`));

    const undo = await post(`/admin/merges/${merged.body.id}/undo`, "", ADMIN);
    assert.equal(undo.status, 200, JSON.stringify(undo.body));
    const a = await get(`/admin/profiles?id=user_id:${u1}`, ADMIN);
    const b = await get(`/admin/profiles?id=user_id:${u2}`, ADMIN);
    assert.notEqual(a.body.id, b.body.id);
  });

  test("erasure removes the profile, its decisions and events, and suppresses its ids", async () => {
    const anon = uid("anon");
    const user = uid("user");
    await post("/v1/batch", {
      writeKey: "demo-write-key",
      batch: [...paidPricingVisit(anon, anon), { type: "identify", messageId: `${anon}-i`, anonymousId: anon, userId: user }],
    });
    const erased = await fetch(`${worker.url}/admin/profiles?id=user_id:${user}`, { method: "DELETE", headers: ADMIN });
    assert.equal(erased.status, 200, await erased.clone().text());
    assert.equal((await get(`/admin/profiles?id=user_id:${user}`, ADMIN)).status, 404);
    assert.deepEqual((await get(`/v1/decide?anonymousId=${anon}`)).body.segments, []);

    const comeback = await post("/v1/track", { writeKey: "demo-write-key", messageId: `${anon}-later`, anonymousId: anon, event: "Came Back" });
    assert.equal(comeback.status, 200);
    assert.equal(comeback.body.accepted, 0);
    assert.ok(comeback.body.warnings.some((w) => /erased/.test(w.warning)));
    assert.equal((await get(`/admin/profiles?id=anonymous_id:${anon}`, ADMIN)).status, 404);
    const metrics = await get("/admin/metrics", ADMIN);
    assert.ok(metrics.body.suppressed >= 1);
  });

  test("the first HTML response is personalised for members, and only for them", async () => {
    const anon = uid("anon");
    await post("/v1/batch", { writeKey: "demo-write-key", batch: paidPricingVisit(anon, anon) });
    const member = await get("/pricing", { cookie: `weft_aid=${anon}` });
    assert.equal(member.status, 200);
    assert.match(member.body, /SPRING20/);
    assert.match(member.body, /data-weft-offer="paid-pricing-interest"/);
    assert.equal(member.headers.get("cache-control"), "private, no-store");

    const stranger = await get("/pricing", { cookie: `weft_aid=${uid("stranger")}` });
    assert.equal(stranger.status, 200);
    assert.doesNotMatch(stranger.body, /SPRING20/);
    assert.match(stranger.body, /id="weft-offer"/, "the placeholder stays for others");
    assert.match(stranger.headers.get("set-cookie") ?? "", /weft_sid=/);
  });

  test("bodies in an encoding the collector does not read get 415 naming it", async () => {
    const res = await post("/v1/batch", { writeKey: "demo-write-key", batch: [] }, { "content-encoding": "br" });
    assert.equal(res.status, 415);
    assert.match(res.body.error, /content-encoding "br" is not supported/);
  });

  test("placeholder ids are no visitor: refused when asked, passed over in cookies", async () => {
    const anon = uid("anon");
    await post("/v1/batch", { writeKey: "demo-write-key", batch: paidPricingVisit(anon, anon) });
    const refused = await get("/v1/decide?anonymousId=undefined");
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /placeholder/);
    const long = await get(`/v1/decide?anonymousId=${"x".repeat(5000)}`);
    assert.equal(long.status, 400);
    assert.match(long.body.error, /5000 bytes exceeds 512/);
    const viaCookie = await get("/v1/decide", { cookie: `weft_sid=undefined; weft_aid=${anon}` });
    assert.deepEqual(viaCookie.body.segments, ["paid-pricing-interest"]);
    // Asked for as ingest would store it: a quoted id or one with a zero-width space is the
    // same visitor.
    const quoted = await get(`/v1/decide?anonymousId=${encodeURIComponent(`"${anon}"`)}`);
    assert.deepEqual(quoted.body.segments, ["paid-pricing-interest"]);
    const hidden = await get(`/v1/decide?anonymousId=${encodeURIComponent(`${anon.slice(0, 2)}\u200b${anon.slice(2)}`)}`);
    assert.deepEqual(hidden.body.segments, ["paid-pricing-interest"]);
  });

  test("admin routes need the token and name wrong methods and paths", async () => {
    assert.equal((await get("/admin/metrics")).status, 401);
    assert.equal((await get("/admin/metrics", { authorization: "Bearer wrong" })).status, 401);
    const wrongMethod = await fetch(`${worker.url}/admin/metrics`, { method: "POST", headers: ADMIN });
    assert.equal(wrongMethod.status, 405);
    assert.equal((await get("/admin/nothing-here", ADMIN)).status, 404);
    assert.equal((await get("/admin/profiles?id=nokind", ADMIN)).status, 400);
    assert.equal((await get(`/admin/profiles?id=user_id:${uid("nobody")}`, ADMIN)).status, 404);
  });
});

async function waitFor(check, ms = 3000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail("condition not met in time");
}

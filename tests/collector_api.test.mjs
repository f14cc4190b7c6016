//! The collector's HTTP API end to end, against the built worker under `wrangler dev`:
//! every collector route of DESIGN.md's table (the batch routes, the six event routes and
//! their one-letter forms), the write key as Basic user name or in the body, JSON sent as
//! text/plain or application/json, gzip bodies, the size limits (413 for a body over
//! 500 KiB, plain or inflated, and for a gzip bomb), per-event rejections and warnings,
//! 400/401/404/405 answers with JSON errors, and CORS (preflight, allowed and refused
//! origins).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";

import { startWorker } from "./lib/worker.mjs";
import {
  archivedById,
  basic,
  metrics,
  pageEvent,
  post,
  profile,
  trackEvent,
  uid,
} from "./collector_common.mjs";

const ALLOWED_ORIGIN = "https://www.example.com";
const REFUSED_ORIGIN = "https://evil.example.net";

describe("collector api", () => {
  let worker;
  before(async () => {
    worker = await startWorker();
  });
  after(() => worker?.stop());

  test("every collector route stores its event type", async () => {
    const anon = uid("anon-routes");
    const user = uid("user-routes");
    const bodies = {
      track: { event: "Signed Up", anonymousId: anon },
      page: { name: "Home", anonymousId: anon },
      screen: { name: "Home", anonymousId: anon },
      identify: { userId: user, anonymousId: anon, traits: { plan: "pro" } },
      group: { groupId: "acme", userId: user },
      alias: { previousId: anon, userId: user },
    };
    const cases = [];
    for (const [type, body] of Object.entries(bodies)) {
      cases.push({ path: `/v1/${type}`, body });
      cases.push({ path: `/v1/${type[0]}`, body });
    }
    cases.push({ path: "/v1/batch", body: { batch: [pageEvent(anon)] } });
    cases.push({ path: "/v1/b", body: { batch: [trackEvent(anon), pageEvent(anon)] } });
    cases.push({ path: "/v1/import", body: { batch: [pageEvent(anon)] } });

    const before = await metrics(worker.url);
    let expected = 0;
    for (const { path, body } of cases) {
      const events = body.batch ?? [body];
      const sent = body.batch ? body : { ...body, messageId: uid("m") };
      const res = await post(worker.url, path, sent);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.deepEqual(
        { ok: res.json.ok, accepted: res.json.accepted, rejected: res.json.rejected },
        { ok: true, accepted: events.length, rejected: [] },
        path,
      );
      expected += events.length;
    }
    const after = await metrics(worker.url);
    assert.equal(after.accepted - before.accepted, expected);

    const stitched = await profile(worker.url, `user_id:${user}`);
    assert.ok(stitched, "identify stitched the anonymous id to the user");
    assert.ok(stitched.identifiers.some((h) => h.id === `anonymous_id:${anon}`));
    assert.equal(stitched.traits.plan, "pro");
    assert.equal(stitched.account, "acme", "the group event attached the account");
  });

  test("a type that contradicts its route is rejected, naming both", async () => {
    const res = await post(worker.url, "/v1/t", pageEvent(uid("anon")));
    assert.equal(res.status, 400);
    assert.match(res.json.error, /event type "page" sent to the \/v1\/track route/);
    assert.equal(res.json.rejected[0].index, 0);
  });

  test("the write key counts as Basic user name or in the body, and is checked", async () => {
    const event = () => ({ batch: [pageEvent(uid("anon-key"))] });
    const cases = [
      { name: "body writeKey", options: {}, status: 200 },
      { name: "basic user name", options: { inBody: false }, status: 200 },
      {
        name: "basic user name with a password",
        options: { writeKey: null, headers: { authorization: basic("demo-write-key", "x") } },
        status: 200,
      },
      {
        name: "basic wins over a wrong body key",
        body: { ...event(), writeKey: "nope" },
        options: { writeKey: null, headers: { authorization: basic("demo-write-key") } },
        status: 200,
      },
      { name: "no key", options: { writeKey: null }, status: 401, error: /missing write key/ },
      { name: "unknown body key", options: { writeKey: "nope" }, status: 401, error: /unknown/ },
      {
        name: "unknown basic key",
        options: { writeKey: "nope", inBody: false },
        status: 401,
        error: /unknown write key/,
      },
      {
        name: "bearer is no write key",
        options: { writeKey: null, headers: { authorization: "Bearer demo-write-key" } },
        status: 401,
        error: /missing write key/,
      },
    ];
    for (const { name, body, options, status, error } of cases) {
      const res = await post(worker.url, "/v1/batch", body ?? event(), options);
      assert.equal(res.status, status, `${name}: ${res.text}`);
      if (error) assert.match(res.json.error, error, name);
    }
  });

  test("json is read whatever the content type says", async () => {
    const types = [
      "text/plain",
      "text/plain;charset=UTF-8",
      "application/json",
      "application/json; charset=utf-8",
      "application/x-www-form-urlencoded",
      null,
    ];
    for (const contentType of types) {
      const res = await post(worker.url, "/v1/batch", { batch: [pageEvent(uid("a"))] }, {
        contentType,
      });
      assert.equal(res.status, 200, `${contentType}: ${res.text}`);
      assert.equal(res.json.accepted, 1, String(contentType));
    }
  });

  test("gzip bodies are inflated, and refused with 413 past 500 KiB inflated", async () => {
    const ok = await post(worker.url, "/v1/batch", { batch: [pageEvent(uid("gz"))] }, {
      gzip: true,
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.accepted, 1);

    // A bomb: 100 MiB of spaces in about 100 KiB.
    const bomb = gzipSync(Buffer.alloc(100 * 1024 * 1024, 0x20), { level: 9 });
    assert.ok(bomb.length < 200 * 1024);
    const bombed = await post(worker.url, "/v1/batch", bomb, {
      headers: { "content-encoding": "gzip" },
    });
    assert.equal(bombed.status, 413, bombed.text);
    assert.match(bombed.json.error, /body exceeds 512000 bytes/);

    // Valid events that only inflate past the limit.
    const padding = "x".repeat(3_000);
    const events = Array.from({ length: 200 }, () =>
      pageEvent(uid("gz-big"), { properties: { padding } }),
    );
    const big = await post(worker.url, "/v1/batch", { batch: events }, { gzip: true });
    assert.equal(big.status, 413, big.text);

    const notGzip = await post(worker.url, "/v1/batch", Buffer.from("{\"batch\":[]}"), {
      headers: { "content-encoding": "gzip" },
    });
    assert.equal(notGzip.status, 400);
    assert.match(notGzip.json.error, /not valid gzip/);
  });

  test("a plain body over 500 KiB is refused with 413", async () => {
    const padding = "x".repeat(10_000);
    const events = Array.from({ length: 60 }, () =>
      pageEvent(uid("big"), { properties: { padding } }),
    );
    const res = await post(worker.url, "/v1/batch", { batch: events });
    assert.equal(res.status, 413, res.text);
    assert.match(res.json.error, /body exceeds 512000 bytes/);
  });

  test("an event over 32 KiB is one rejection, the rest of the batch stands", async () => {
    const big = pageEvent(uid("big"), { properties: { p: "x".repeat(33 * 1024) } });
    const fine = pageEvent(uid("fine"));
    const res = await post(worker.url, "/v1/batch", { batch: [big, fine] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, 1);
    assert.equal(res.json.rejected.length, 1);
    assert.deepEqual(
      { index: res.json.rejected[0].index, messageId: res.json.rejected[0].messageId },
      { index: 0, messageId: big.messageId },
    );
    assert.match(res.json.rejected[0].error, /^event exceeds 32 KiB/);
  });

  test("invalid events are listed with index, messageId and fault; valid ones kept", async () => {
    const anon = uid("mixed");
    const batch = [
      pageEvent(anon),
      { type: "purchase", anonymousId: anon, messageId: "bad-type" },
      { type: "track", anonymousId: anon, messageId: "no-name" },
      { type: "page", messageId: "no-ids" },
      pageEvent(anon, { userId: "undefined" }),
    ];
    const before = await metrics(worker.url);
    const res = await post(worker.url, "/v1/batch", { batch });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, 2);
    const rejected = res.json.rejected.map((r) => [r.index, r.messageId, r.error.split(" (")[0]]);
    assert.deepEqual(rejected, [
      [1, "bad-type", 'unknown event type "purchase"'],
      [2, "no-name", "track event has no event name"],
      [3, "no-ids", "event has neither userId nor anonymousId"],
    ]);
    const junk = res.json.warnings.find((w) => w.messageId === batch[4].messageId);
    assert.ok(junk, `a warning for the junk user id in ${res.text}`);
    assert.equal(junk.index, 4);
    assert.match(junk.warning, /undefined/);

    const after = await metrics(worker.url);
    assert.equal(after.accepted - before.accepted, 2);
    assert.equal(after.rejectedTotal - before.rejectedTotal, 3);
    assert.equal(
      (after.rejected.unknown_event_type ?? 0) - (before.rejected.unknown_event_type ?? 0),
      1,
    );
    assert.ok(after.warnedTotal > before.warnedTotal, "the junk id is counted as a warning");
  });

  test("nothing valid is a 400 that still lists every rejection", async () => {
    const cases = [
      { body: { batch: [{ type: "page", messageId: "x" }] }, error: /^no valid events: event/ },
      { body: { batch: [] }, error: /no valid events: the batch is empty/ },
      { body: "", error: /body is empty/ },
      { body: "not json", error: /body is not valid json/ },
      { body: "[1,2]", error: /body must be a json object/ },
      { body: { batch: {} }, error: /batch must be an array/ },
    ];
    for (const { body, error } of cases) {
      const res = await post(worker.url, "/v1/batch", body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.json.error, error);
    }
    const res = await post(worker.url, "/v1/batch", { batch: [{ type: "page", messageId: "x" }] });
    assert.deepEqual(res.json.rejected, [
      { index: 0, messageId: "x", error: "event has neither userId nor anonymousId" },
    ]);
  });

  test("unknown routes are 404 and wrong methods 405, as json naming the fault", async () => {
    const cases = [
      { method: "POST", path: "/v1/nope", status: 404, error: /no route for \/v1\/nope/ },
      { method: "POST", path: "/v1/tracks", status: 404, error: /no route/ },
      { method: "GET", path: "/v1/batch", status: 405, allow: "POST, OPTIONS" },
      { method: "PUT", path: "/v1/t", status: 405, allow: "POST, OPTIONS" },
      { method: "DELETE", path: "/v1/b", status: 405, allow: "POST, OPTIONS" },
      { method: "POST", path: "/v1/decide", status: 405, allow: "GET, OPTIONS" },
    ];
    for (const { method, path, status, error, allow } of cases) {
      const res = await fetch(`${worker.url}${path}`, {
        method,
        body: method === "GET" ? undefined : "{}",
      });
      const json = await res.json();
      assert.equal(res.status, status, `${method} ${path}`);
      assert.equal(typeof json.error, "string");
      if (error) assert.match(json.error, error);
      if (allow) {
        assert.equal(res.headers.get("allow"), allow);
        assert.match(json.error, new RegExp(`method ${method} not allowed`));
      }
    }
  });

  test("cors: preflight and answers for allowed origins, nothing for others", async () => {
    const preflight = (origin) =>
      fetch(`${worker.url}/v1/batch`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type",
        },
      });
    const allowed = await preflight(ALLOWED_ORIGIN);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
    assert.equal(allowed.headers.get("access-control-allow-credentials"), "true");
    assert.match(allowed.headers.get("access-control-allow-methods"), /POST/);
    assert.match(allowed.headers.get("access-control-allow-headers"), /content-type/);
    assert.match(allowed.headers.get("vary") ?? "", /Origin/i);

    const subdomain = await preflight("http://app.shop.test:8787");
    assert.equal(subdomain.headers.get("access-control-allow-origin"), "http://app.shop.test:8787");

    const refused = await preflight(REFUSED_ORIGIN);
    assert.equal(refused.status, 204);
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    assert.equal(refused.headers.get("access-control-allow-credentials"), null);

    for (const [origin, echoed] of [
      [ALLOWED_ORIGIN, ALLOWED_ORIGIN],
      [REFUSED_ORIGIN, null],
    ]) {
      const res = await post(worker.url, "/v1/batch", { batch: [pageEvent(uid("cors"))] }, {
        headers: { origin },
      });
      // Events are accepted from any origin; only allowed ones may read the answer.
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), echoed, origin);
      assert.notEqual(res.headers.get("access-control-allow-origin"), "*");
    }

    const error = await post(worker.url, "/v1/batch", "not json", {
      headers: { origin: ALLOWED_ORIGIN },
    });
    assert.equal(error.status, 400);
    assert.equal(error.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
  });

  test("the table's other routes answer json with the documented status", async () => {
    const admin = { authorization: "Bearer demo-admin-token" };
    const cases = [
      ["GET", "/v1/decide?anonymousId=nobody-yet", {}, 200],
      ["GET", "/v1/decide?userId=u-1", {}, 403],
      ["GET", "/v1/decide?userId=u-1&userHash=00", {}, 403],
      ["GET", "/admin/metrics", {}, 401],
      ["GET", "/admin/metrics", { authorization: "Bearer wrong" }, 401],
      ["GET", "/admin/metrics", admin, 200],
      ["GET", "/admin/profiles?id=anonymous_id:nobody-yet", admin, 404],
      ["GET", "/admin/profiles?id=nonsense", admin, 400],
      ["GET", "/admin/segments/paid-pricing-interest", admin, 200],
      ["GET", "/admin/segments/no-such-segment", admin, 404],
      ["POST", "/admin/merges", admin, 400],
      ["POST", "/admin/merges/999999/undo", admin, 404],
    ];
    for (const [method, path, headers, status] of cases) {
      const res = await fetch(`${worker.url}${path}`, {
        method,
        headers,
        body: method === "POST" ? "{}" : undefined,
      });
      const json = await res.json();
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(json)}`);
      if (status >= 400) assert.equal(typeof json.error, "string", `${method} ${path}`);
    }
    const decision = await (await fetch(`${worker.url}/v1/decide?anonymousId=x`)).json();
    assert.deepEqual(Object.keys(decision).sort(), ["segments", "validUntil", "version"]);
  });

  test("the segment common fields reach the profile", async () => {
    const anon = uid("fields");
    const user = uid("user-fields");
    const batch = [
      pageEvent(anon, {
        context: {
          page: { path: "/pricing", url: "https://www.example.com/pricing?utm_medium=cpc" },
          campaign: { source: "google", medium: "cpc", name: "spring" },
          locale: "en-GB",
        },
        integrations: { All: true },
        properties: { path: "/pricing" },
        timestamp: new Date(Date.now() - 60_000).toISOString(),
      }),
      {
        type: "identify",
        messageId: uid("m"),
        anonymousId: anon,
        userId: user,
        traits: { plan: "pro", email: "Fields@Example.com" },
      },
    ];
    const res = await post(worker.url, "/v1/batch", { batch, sentAt: new Date().toISOString() });
    assert.equal(res.json?.accepted, 2, res.text);
    const found = await profile(worker.url, `user_id:${user}`);
    assert.equal(found.traits.plan, "pro");
    assert.ok(found.identifiers.some((h) => h.id === "email:fields@example.com"));
    assert.equal(found.touchpoints.first.medium, "cpc");
    assert.equal(found.touchpoints.first.source, "google");

    // The archive keeps every common field as sent, beside what the collector added.
    const stored = await archivedById(worker, batch.map((e) => e.messageId));
    const [page, identify] = batch.map((e) => stored.find((a) => a.messageId === e.messageId));
    assert.deepEqual(page.context.campaign, batch[0].context.campaign);
    assert.equal(page.context.locale, "en-GB");
    assert.deepEqual(page.integrations, { All: true });
    assert.deepEqual(page.properties, { path: "/pricing" });
    assert.equal(page.originalTimestamp, batch[0].timestamp);
    assert.ok(page.sentAt && page.receivedAt && page.timestamp);
    assert.equal(page.weft.source, "web");
    assert.deepEqual(identify.traits, batch[1].traits);
  });
});

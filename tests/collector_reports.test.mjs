//! The field reports with area `collector` (../shared/cases/field-reports.jsonl) as
//! end-to-end tests named after them, each with siblings of its kind, against the built
//! worker under `wrangler dev`: JSON posted as text/plain, deduplication by messageId
//! (also of two concurrent deliveries), clock-skew correction, bot user agents, and the
//! `_ga` cookie's client id. What was stored is read back through the admin API and the
//! R2 archive.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { startWorker } from "./lib/worker.mjs";
import {
  archivedById,
  decide,
  HUMAN_USER_AGENT,
  identifiers,
  metrics,
  pageEvent,
  post,
  profile,
  SERVER_WRITE_KEY,
  trackEvent,
  uid,
} from "./collector_common.mjs";

const ORIGIN = "https://www.example.com";
const SECOND = 1_000;
const DAY = 86_400 * SECOND;

describe("collector field reports", () => {
  let worker;
  before(async () => {
    worker = await startWorker();
  });
  after(() => worker?.stop());

  describe("text-plain-json-accepted", () => {
    test("text-plain-json-accepted", async () => {
      const anon = uid("anon-1");
      const [m1, m2] = [uid("m-1"), uid("m-2")];
      const beacon = await post(
        worker.url,
        "/v1/batch",
        `{"batch":[{"type":"page","anonymousId":"${anon}","messageId":"${m1}"}],` +
          `"writeKey":"demo-write-key"}`,
        { writeKey: null, contentType: "text/plain;charset=UTF-8", headers: { origin: ORIGIN } },
      );
      assert.equal(beacon.status, 200, beacon.text);
      assert.equal(beacon.json.accepted, 1);

      const preflight = await fetch(`${worker.url}/v1/batch`, {
        method: "OPTIONS",
        headers: {
          origin: ORIGIN,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type",
        },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), ORIGIN);
      assert.match(preflight.headers.get("access-control-allow-methods"), /\bPOST\b/);
      assert.match(preflight.headers.get("access-control-allow-headers"), /\bcontent-type\b/);
      assert.equal(preflight.headers.get("access-control-allow-credentials"), "true");

      const json = await post(
        worker.url,
        "/v1/batch",
        { batch: [{ type: "page", anonymousId: anon, messageId: m2 }] },
        { contentType: "application/json", headers: { origin: ORIGIN } },
      );
      assert.equal(json.status, 200, json.text);
      assert.equal(json.json.accepted, 1);
      assert.equal(json.headers.get("access-control-allow-origin"), ORIGIN);
      assert.equal(json.headers.get("access-control-allow-credentials"), "true");

      const notJson = await post(worker.url, "/v1/batch", "not json", {
        contentType: "text/plain",
        headers: { origin: ORIGIN },
      });
      assert.equal(notJson.status, 400);
      assert.match(notJson.json.error, /^body is not valid json/);

      // The bad request cost the others nothing.
      const found = await profile(worker.url, `anonymous_id:${anon}`);
      assert.equal(found.events, 2);
    });

    test("a preflight asking for more headers names them all; other origins get none", async () => {
      const ask = (origin) =>
        fetch(`${worker.url}/v1/t`, {
          method: "OPTIONS",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization, content-encoding",
          },
        });
      const allowed = await ask(ORIGIN);
      const headers = allowed.headers.get("access-control-allow-headers");
      for (const name of ["content-type", "authorization", "content-encoding"]) {
        assert.match(headers, new RegExp(`\\b${name}\\b`));
      }
      const refused = await ask("https://www.example.com.evil.test");
      assert.equal(refused.headers.get("access-control-allow-origin"), null);
    });

    test("a beacon without any content type, on a one-letter route, is read as json", async () => {
      const anon = uid("beacon");
      const res = await post(worker.url, "/v1/p", { anonymousId: anon, messageId: uid("m") }, {
        contentType: null,
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 1);
    });
  });

  describe("dedupe-batch-by-messageid", () => {
    test("dedupe-batch-by-messageid", async () => {
      const anon = uid("dedupe");
      const [a, b, c] = [uid("a"), uid("b"), uid("c")];
      const first = { batch: [trackEvent(anon, { messageId: a })] };
      const seen = await post(worker.url, "/v1/batch", first);
      assert.equal(seen.json.accepted, 1);

      const before = await metrics(worker.url);
      const batch = [a, b, c, c].map((messageId) => trackEvent(anon, { messageId }));
      const res = await post(worker.url, "/v1/batch", { batch });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 2, "exactly b and one c");
      const duplicates = res.json.warnings
        .filter((w) => /duplicate/.test(w.warning))
        .map((w) => [w.index, w.messageId]);
      assert.deepEqual(duplicates, [
        [0, a],
        [3, c],
      ]);
      const after = await metrics(worker.url);
      assert.equal(after.deduplicated - before.deduplicated, 2);
      assert.equal(after.accepted - before.accepted, 2);

      const stored = await archivedById(worker, [a, b, c]);
      const counts = {};
      for (const e of stored) counts[e.messageId] = (counts[e.messageId] ?? 0) + 1;
      assert.deepEqual(counts, { [a]: 1, [b]: 1, [c]: 1 });
      assert.equal((await profile(worker.url, `anonymous_id:${anon}`)).events, 3);
    });

    test("concurrent deliveries of the same batch store each event once", async () => {
      const anon = uid("concurrent");
      const ids = [uid("b"), uid("c"), uid("d")];
      const batch = [...ids, ids[1]].map((messageId) => trackEvent(anon, { messageId }));
      const deliveries = await Promise.all(
        Array.from({ length: 4 }, () => post(worker.url, "/v1/batch", { batch })),
      );
      for (const d of deliveries) assert.equal(d.status, 200, d.text);
      const accepted = deliveries.reduce((sum, d) => sum + d.json.accepted, 0);
      assert.equal(accepted, 3, "one b, one c, one d across all deliveries");
      const stored = await archivedById(worker, ids);
      assert.equal(stored.length, 3);
      assert.equal((await profile(worker.url, `anonymous_id:${anon}`)).events, 3);
    });

    test("the same messageId from another write key is another event", async () => {
      const anon = uid("two-sources");
      const messageId = uid("shared");
      const web = await post(worker.url, "/v1/batch", { batch: [trackEvent(anon, { messageId })] });
      const backend = await post(
        worker.url,
        "/v1/batch",
        { batch: [trackEvent(anon, { messageId })] },
        { writeKey: SERVER_WRITE_KEY },
      );
      const again = await post(
        worker.url,
        "/v1/batch",
        { batch: [trackEvent(anon, { messageId })] },
        { writeKey: SERVER_WRITE_KEY, inBody: false },
      );
      assert.deepEqual(
        [web.json.accepted, backend.json.accepted, again.json.accepted],
        [1, 1, 0],
      );
    });

    test("events without a messageId are deduplicated by their content", async () => {
      const anon = uid("no-id");
      const event = { type: "track", event: "Clicked", anonymousId: anon };
      const first = await post(worker.url, "/v1/batch", { batch: [event] });
      const retry = await post(worker.url, "/v1/batch", { batch: [event] });
      const other = await post(worker.url, "/v1/batch", {
        batch: [{ ...event, event: "Other" }],
      });
      assert.deepEqual(
        [first.json.accepted, retry.json.accepted, other.json.accepted],
        [1, 0, 1],
      );
      assert.match(first.json.warnings[0].warning, /messageId missing/);
    });
  });

  describe("client-clock-skew-correction", () => {
    test("client-clock-skew-correction", async () => {
      // The client's clock runs two days ahead; the batch was sent 5 s after m-1.
      const client = Date.now() + 2 * DAY;
      const iso = (t) => new Date(t).toISOString();
      const anon = uid("anon-1");
      const ids = [uid("m-1"), uid("m-2"), uid("m-3")];
      const batch = [
        { messageId: ids[0], timestamp: iso(client) },
        { messageId: ids[1], timestamp: iso(client - 60 * SECOND) },
        // No time zone: read as UTC, with a warning.
        { messageId: ids[2], timestamp: iso(client).replace("Z", "") },
      ].map((e) => ({ type: "track", event: "Clicked", anonymousId: anon, ...e }));
      const res = await post(worker.url, "/v1/batch", { sentAt: iso(client + 5 * SECOND), batch });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 3);
      const zoneless = res.json.warnings.filter((w) => /no time zone/.test(w.warning));
      assert.deepEqual(zoneless.map((w) => w.messageId), [ids[2]]);

      const stored = await archivedById(worker, ids);
      const byId = Object.fromEntries(stored.map((e) => [e.messageId, e]));
      const delay = { [ids[0]]: 5 * SECOND, [ids[1]]: 65 * SECOND, [ids[2]]: 5 * SECOND };
      for (const id of ids) {
        const e = byId[id];
        const received = Date.parse(e.receivedAt);
        assert.equal(Date.parse(e.timestamp), received - delay[id], `${id} corrected`);
        assert.ok(Date.parse(e.timestamp) <= received, "never in the future");
        assert.ok(Math.abs(received - Date.now()) < 60 * SECOND, "receivedAt is the server's");
      }
      assert.equal(byId[ids[0]].originalTimestamp, iso(client), "client value kept");
      assert.equal(byId[ids[0]].sentAt, iso(client + 5 * SECOND));
    });

    test("without sentAt a future timestamp is clamped to receivedAt and flagged", async () => {
      const anon = uid("future");
      const ids = [uid("f"), uid("p")];
      const hourAgo = new Date(Date.now() - 3_600 * SECOND).toISOString();
      const batch = [
        trackEvent(anon, {
          messageId: ids[0],
          timestamp: new Date(Date.now() + DAY).toISOString(),
        }),
        trackEvent(anon, { messageId: ids[1], timestamp: hourAgo }),
      ];
      const res = await post(worker.url, "/v1/batch", { batch });
      assert.equal(res.json.accepted, 2, res.text);
      const flagged = res.json.warnings.filter((w) => /future/.test(w.warning));
      assert.deepEqual(flagged.map((w) => [w.index, w.messageId]), [[0, ids[0]]]);
      const stored = await archivedById(worker, ids);
      const byId = Object.fromEntries(stored.map((e) => [e.messageId, e]));
      assert.equal(byId[ids[0]].timestamp, byId[ids[0]].receivedAt);
      assert.equal(byId[ids[1]].timestamp, new Date(Date.parse(hourAgo)).toISOString());
    });

    test("timestamps after sentAt or before 1970 are stored as receivedAt, flagged", async () => {
      const anon = uid("odd-clock");
      const ids = [uid("after-sent"), uid("epoch")];
      const batch = [
        trackEvent(anon, {
          messageId: ids[0],
          timestamp: "2024-05-02T00:00:00Z",
          sentAt: "2024-05-01T00:00:00Z",
        }),
        trackEvent(anon, { messageId: ids[1], timestamp: "0001-01-01T00:00:00Z" }),
      ];
      const res = await post(worker.url, "/v1/batch", {
        batch,
        sentAt: "9999-12-31T00:00:00Z",
      });
      assert.equal(res.json.accepted, 2, res.text);
      const warned = Object.fromEntries(res.json.warnings.map((w) => [w.messageId, w.warning]));
      assert.match(warned[ids[0]], /after sentAt/);
      assert.match(warned[ids[1]], /before 1970/);
      for (const e of await archivedById(worker, ids)) {
        assert.equal(e.timestamp, e.receivedAt, e.messageId);
      }
    });
  });

  describe("bot-ua-flagged", () => {
    const AHREFS = "Mozilla/5.0 (compatible; AhrefsSiteAudit/6.1; +http://ahrefs.com/robot/)";
    const LIGHTHOUSE =
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) " +
      "Chrome/94.0.4590.2 Safari/537.36 Chrome-Lighthouse";

    /** Sends one visitor's events with the same user agent in the event and the request. */
    async function visit(anon, userAgent, events, options = {}) {
      const batch = events.map((e) => ({
        ...e,
        anonymousId: anon,
        context: { userAgent, ...e.context },
      }));
      const res = await post(worker.url, "/v1/batch", { batch }, {
        headers: { "user-agent": options.requestUserAgent ?? userAgent },
        writeKey: options.writeKey,
      });
      assert.equal(res.status, 200, res.text);
      return res;
    }

    test("bot-ua-flagged", async () => {
      const run = uid("run");
      const visitors = [
        [`anon-bot-1-${run}`, AHREFS, true],
        [`anon-bot-2-${run}`, LIGHTHOUSE, true],
        [`anon-human-${run}`, HUMAN_USER_AGENT, false],
      ];
      const sent = [];
      for (const [anon, ua] of visitors) {
        const messageId = uid("m");
        sent.push(messageId);
        const res = await visit(anon, ua, [{ type: "page", messageId }]);
        assert.equal(res.json.accepted, 1, "a bot's page view is stored too");
      }
      // Bots are stored as bot page views and make no profile; the human makes one.
      for (const [anon, , bot] of visitors) {
        const found = await profile(worker.url, `anonymous_id:${anon}`);
        if (bot) {
          assert.equal(found, null, `${anon}: no profile for a bot`);
        } else {
          assert.equal(found.bot, false, anon);
          assert.equal(found.device, "desktop", anon);
        }
      }
      const archived = await archivedById(worker, sent);
      const flags = Object.fromEntries(archived.map((e) => [e.anonymousId, e.weft.bot]));
      for (const [anon, , bot] of visitors) assert.equal(flags[anon], bot, anon);
      const counted = await metrics(worker.url);
      assert.ok(counted.botEvents >= 2, JSON.stringify(counted));
    });

    test("bots are stored but join no segment a human with the same events joins", async () => {
      const run = uid("seg");
      const pricing = () => ({
        type: "page",
        messageId: uid("m"),
        context: {
          page: { path: "/pricing", url: "https://www.example.com/pricing?utm_medium=cpc" },
          campaign: { medium: "cpc", source: "google" },
        },
      });
      const cases = [
        [`human-${run}`, HUMAN_USER_AGENT, true],
        [`ahrefs-${run}`, AHREFS, false],
        [`lighthouse-${run}`, LIGHTHOUSE, false],
      ];
      for (const [anon, ua] of cases) {
        const res = await visit(anon, ua, [pricing(), pricing()]);
        assert.equal(res.json.accepted, 2, `${anon} stored`);
      }
      for (const [anon, , member] of cases) {
        const found = await profile(worker.url, `anonymous_id:${anon}`);
        if (member) {
          assert.equal(found.events, 2, anon);
          assert.ok(found.segments.includes("paid-pricing-interest"), anon);
        } else {
          assert.equal(found, null, `${anon}: a bot makes no profile`);
        }
        const decision = await decide(worker.url, anon);
        assert.equal(decision.segments.includes("paid-pricing-interest"), member, anon);
      }
    });

    test("a browser request's own user agent counts; a server library's does not", async () => {
      const run = uid("header");
      const cases = [
        {
          name: "bot request header, human event ua, browser source",
          anon: `hdr-bot-${run}`,
          eventUa: HUMAN_USER_AGENT,
          requestUa: "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0 Safari/537.36",
          bot: true,
        },
        {
          name: "server library with a crawler-like request ua, human visitor",
          anon: `srv-human-${run}`,
          eventUa: HUMAN_USER_AGENT,
          requestUa: "python-requests/2.31",
          writeKey: SERVER_WRITE_KEY,
          bot: false,
        },
        {
          name: "server library reporting a monitoring agent's visit",
          anon: `srv-bot-${run}`,
          eventUa: "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
          requestUa: "analytics-node-next/latest",
          writeKey: SERVER_WRITE_KEY,
          bot: true,
        },
      ];
      for (const c of cases) {
        await visit(c.anon, c.eventUa, [{ type: "page", messageId: uid("m") }], {
          requestUserAgent: c.requestUa,
          writeKey: c.writeKey,
        });
        const found = await profile(worker.url, `anonymous_id:${c.anon}`);
        if (c.bot) assert.equal(found, null, c.name);
        else assert.equal(found.bot, false, c.name);
      }
    });

    test("a bot's events make no profile; the same id's human events make one", async () => {
      const anon = uid("mixed-ua");
      const first = uid("m");
      await visit(anon, AHREFS, [{ type: "page", messageId: first }]);
      assert.equal(await profile(worker.url, `anonymous_id:${anon}`), null);
      await visit(anon, HUMAN_USER_AGENT, [{ type: "page", messageId: uid("m") }]);
      const found = await profile(worker.url, `anonymous_id:${anon}`);
      assert.equal(found.bot, false);
      assert.equal(found.events, 1, "only the human's event is stitched");
      const [archived] = await archivedById(worker, [first]);
      assert.equal(archived.weft.bot, true, "the bot's event is still stored");
    });
  });

  describe("ga-cookie-client-id", () => {
    test("ga-cookie-client-id", async () => {
      const run = uid("ga");
      const cookies = [
        "GA1.1.1234567890.1700000000",
        "GA1.2.1234567890.1700000000",
        "GA1.3-2.1234567890.1700000000",
        "GA1.1.custom-0001",
        "garbage",
      ];
      // A run-specific client id, so reruns against one worker never merge.
      const clientId = `${Date.now()}.1700000000`;
      const batch = cookies.map((cookie, i) =>
        pageEvent(`anon-ga-${i}-${run}`, {
          context: { cookies: { _ga: cookie.replace("1234567890.1700000000", clientId) } },
        }),
      );
      const res = await post(worker.url, "/v1/batch", { batch });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 5);

      const same = await profile(worker.url, `ga_client_id:${clientId}`);
      assert.ok(same, "the first three cookies give one client id");
      const held = identifiers(same);
      for (const i of [0, 1, 2]) assert.ok(held.includes(`anonymous_id:anon-ga-${i}-${run}`), i);

      const custom = await profile(worker.url, "ga_client_id:custom-0001");
      assert.ok(identifiers(custom).includes(`anonymous_id:anon-ga-3-${run}`));

      const garbage = res.json.warnings.filter((w) => w.index === 4);
      assert.equal(garbage.length, 1, res.text);
      assert.match(garbage[0].warning, /garbage/);
      const alone = await profile(worker.url, `anonymous_id:anon-ga-4-${run}`);
      assert.deepEqual(
        identifiers(alone).filter((id) => id.startsWith("ga_client_id:")),
        [],
        "no client id invented for garbage",
      );
    });

    test("a _ga pair or a whole cookie header in a configured field gives the id", async () => {
      const anon = uid("ga-header");
      const clientId = `${Date.now()}.42`;
      const batch = [
        pageEvent(anon, { properties: { ga_cookie: `theme=dark; _ga=GA1.2.${clientId}; x=1` } }),
        pageEvent(uid("ga-pair"), { context: { cookies: { _ga: `_ga=GA1.1.${clientId}` } } }),
      ];
      const res = await post(worker.url, "/v1/batch", { batch });
      assert.equal(res.json.accepted, 2, res.text);
      const found = await profile(worker.url, `ga_client_id:${clientId}`);
      assert.ok(identifiers(found).includes(`anonymous_id:${anon}`));
      assert.ok(identifiers(found).includes(`anonymous_id:${batch[1].anonymousId}`));
    });
  });
});

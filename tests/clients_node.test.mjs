//! `@segment/analytics-node`, unchanged, pointed at the local collector with its `host`
//! option: identify, track, page, group and alias all reach the built worker under
//! `wrangler dev` (Basic auth with the write key, `/v1/batch`), are stored, and are
//! stitched into one profile that `/admin/profiles` shows.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Analytics } from "@segment/analytics-node";

import { DEMO_WRITE_KEY, startWorker } from "./lib/worker.mjs";
import {
  identifiers,
  metrics,
  profile,
  SERVER_WRITE_KEY,
  uid,
} from "./collector_common.mjs";

/** An analytics-node client of the local worker, with its errors collected. */
function client(url, writeKey) {
  const analytics = new Analytics({
    writeKey,
    host: url,
    flushAt: 50,
    flushInterval: 100,
    maxRetries: 3,
  });
  const errors = [];
  analytics.on("error", (e) => errors.push(e));
  return { analytics, errors };
}

describe("@segment/analytics-node", () => {
  let worker;
  before(async () => {
    worker = await startWorker();
  });
  after(() => worker?.stop());

  test("identify, track, page, group and alias are stored and stitched", async () => {
    const anon = uid("node-anon");
    const user = uid("node-user");
    const legacy = uid("node-legacy");
    const before = await metrics(worker.url);

    const { analytics, errors } = client(worker.url, DEMO_WRITE_KEY);
    analytics.identify({
      userId: user,
      anonymousId: anon,
      traits: { email: "Node.User@Example.com", plan: "pro" },
    });
    analytics.track({
      userId: user,
      event: "Order Completed",
      properties: { total: 42.5, currency: "EUR" },
    });
    analytics.page({
      anonymousId: anon,
      name: "Pricing",
      properties: { path: "/pricing", url: "https://www.example.com/pricing" },
    });
    analytics.group({ userId: user, groupId: "acme", traits: { name: "Acme", employees: 50 } });
    analytics.alias({ userId: user, previousId: legacy });
    await analytics.closeAndFlush();
    assert.deepEqual(errors, []);

    const after = await metrics(worker.url);
    assert.equal(after.accepted - before.accepted, 5, "all five stored");
    assert.equal(after.rejectedTotal - before.rejectedTotal, 0);

    const found = await profile(worker.url, `user_id:${user}`);
    assert.ok(found, "a profile for the user id");
    const held = identifiers(found);
    for (const id of [`anonymous_id:${anon}`, "email:node.user@example.com"]) {
      assert.ok(held.includes(id), `${id} in ${held}`);
    }
    assert.equal(found.traits.plan, "pro");
    assert.equal(found.account, "acme");
    assert.equal(found.events, 5);
    const viaAnon = await profile(worker.url, `anonymous_id:${anon}`);
    assert.equal(viaAnon.id, found.id, "the page by anonymous id joined the user's profile");
    const viaAlias = await profile(worker.url, `anonymous_id:${legacy}`);
    assert.equal(viaAlias?.id, found.id, "alias linked the previous id");
  });

  test("a backend source's events are no bot, whatever the library's user agent", async () => {
    const user = uid("node-server-user");
    const { analytics, errors } = client(worker.url, SERVER_WRITE_KEY);
    analytics.track({
      userId: user,
      event: "Signed Up",
      context: {
        userAgent:
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
          "Chrome/124.0 Safari/537.36",
      },
    });
    await analytics.closeAndFlush();
    assert.deepEqual(errors, []);
    const found = await profile(worker.url, `user_id:${user}`);
    assert.equal(found.bot, false);
    assert.equal(found.device, "desktop");
  });

  test("a wrong write key is refused and reported to the client as an error", async () => {
    const { analytics, errors } = client(worker.url, "not-a-key");
    analytics.track({ userId: uid("node-nokey"), event: "Refused" });
    await analytics.closeAndFlush();
    assert.equal(errors.length, 1, "analytics-node saw the refusal");
    assert.match(String(errors[0].reason ?? errors[0].message ?? errors[0]), /401|unknown/i);
  });
});

//! Rate limits per write key, end to end: a worker started with `WEFT_RATE_LIMIT=20/40`
//! (20 events per second, bursts of 40) is driven over the limit. Past it the collector
//! answers 429 with `Retry-After` and a JSON error; the refused events were not stored (a
//! 429 is no acknowledgement: the same batch is accepted, not deduplicated, once the
//! client waited); another write key keeps its own budget; refusals are counted.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { startWorker } from "./lib/worker.mjs";
import { metrics, post, SERVER_WRITE_KEY, trackEvent, uid } from "./collector_common.mjs";

const PER_SECOND = 20;
const BURST = 40;

/** A batch of `n` fresh events of one visitor. */
function batchOf(n) {
  const anon = uid("limited");
  return { batch: Array.from({ length: n }, () => trackEvent(anon)) };
}

/** Sends batches of 10 until one is refused; returns the events accepted before it. */
async function driveOverTheLimit(url, options = {}) {
  const started = Date.now();
  let accepted = 0;
  for (let i = 0; i < 20; i++) {
    const body = batchOf(10);
    const res = await post(url, "/v1/batch", body, options);
    if (res.status === 429) {
      return { accepted, refused: res, body, seconds: (Date.now() - started) / 1e3 };
    }
    assert.equal(res.status, 200, res.text);
    accepted += res.json.accepted;
  }
  throw new Error(`no 429 after 200 events at ${PER_SECOND}/s`);
}

describe("rate limit per write key", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ vars: { WEFT_RATE_LIMIT: `${PER_SECOND}/${BURST}` } });
  });
  after(() => worker?.stop());

  test("past the burst a write key gets 429 with Retry-After, and nothing is stored", async () => {
    const before = await metrics(worker.url);
    const { accepted, refused, body, seconds } = await driveOverTheLimit(worker.url, {
      headers: { origin: "https://www.example.com" },
    });
    assert.ok(accepted >= BURST, `the burst of ${BURST} passed (got ${accepted})`);
    assert.ok(accepted <= BURST + PER_SECOND * seconds + 10, `at most the refill (${accepted})`);

    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.match(refused.json.error, /^rate limit exceeded for this write key; retry after \d+ s$/);
    assert.equal(refused.json.ok, undefined, "no acknowledgement");
    assert.equal(
      refused.headers.get("access-control-allow-origin"),
      "https://www.example.com",
      "a browser may read the refusal",
    );

    const counted = await metrics(worker.url);
    assert.equal(counted.accepted - before.accepted, accepted);
    assert.equal(
      (counted.rejected.rate_limited ?? 0) - (before.rejected.rate_limited ?? 0),
      10,
      "the refused events are counted, once",
    );

    // The refused batch was not stored: after waiting, it is accepted, not deduplicated.
    await new Promise((ok) => setTimeout(ok, retryAfter * 1_000));
    const retried = await post(worker.url, "/v1/batch", body);
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.json.accepted, 10);
  });

  test("another write key keeps its own budget", async () => {
    await new Promise((ok) => setTimeout(ok, (BURST / PER_SECOND) * 1_000));
    const { refused } = await driveOverTheLimit(worker.url);
    assert.equal(refused.status, 429);
    const other = await post(worker.url, "/v1/batch", batchOf(10), { writeKey: SERVER_WRITE_KEY });
    assert.equal(other.status, 200, other.text);
    assert.equal(other.json.accepted, 10);
  });

  test("a refused request is refused whole; a body with nothing valid is still a 400", async () => {
    await new Promise((ok) => setTimeout(ok, (BURST / PER_SECOND) * 1_000));
    await driveOverTheLimit(worker.url);
    const mixed = batchOf(30);
    mixed.batch.push({ type: "page", messageId: uid("m") });
    const refused = await post(worker.url, "/v1/batch", mixed);
    assert.equal(refused.status, 429, refused.text);
    const invalid = await post(worker.url, "/v1/batch", { batch: [{ type: "page" }] });
    assert.equal(invalid.status, 400, invalid.text);
    assert.match(invalid.json.error, /neither userId nor anonymousId/);
  });
});

//! The R2 archive and replay on the local Workers runtime: accepted events are archived
//! as NDJSON, a replay rebuilds every profile and decision from the archive, and an
//! erased person stays erased through a replay.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { startWorker } from "./lib/worker.mjs";

const UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15";
const ADMIN = { authorization: "Bearer demo-admin-token" };

let worker;
before(async () => {
  worker = await startWorker();
});
after(async () => {
  await worker?.stop();
});

async function call(method, path, body) {
  const res = await fetch(`${worker.url}${path}`, {
    method,
    headers: { ...ADMIN, "user-agent": UA, "content-type": "text/plain" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test("a replay from the archive rebuilds profiles and decisions, honouring erasure", async () => {
  const keep = `keep-${process.pid}`;
  const gone = `gone-${process.pid}`;
  const visit = (anon) => [
    { type: "page", messageId: `${anon}-1`, anonymousId: anon, context: { page: { path: "/" }, campaign: { medium: "cpc", source: "google" } } },
    { type: "page", messageId: `${anon}-2`, anonymousId: anon, context: { page: { path: "/pricing" } } },
    { type: "page", messageId: `${anon}-3`, anonymousId: anon, context: { page: { path: "/pricing" } } },
    { type: "identify", messageId: `${anon}-4`, anonymousId: anon, userId: `${anon}-user`, traits: { plan: "team" } },
  ];
  const sent = await call("POST", "/v1/batch", { writeKey: "demo-write-key", batch: [...visit(keep), ...visit(gone)] });
  assert.equal(sent.body.accepted, 8);

  // The archive flush runs from the object's alarm a few seconds after the events.
  await sleep(7000);
  const erased = await call("DELETE", `/admin/profiles?id=user_id:${gone}-user`);
  assert.equal(erased.status, 200, JSON.stringify(erased.body));
  assert.ok(erased.body.archiveTombstone, "a tombstone was written to the archive");

  const before = await call("GET", `/admin/profiles?id=user_id:${keep}-user`);
  const replay = await call("POST", "/admin/replay");
  assert.equal(replay.status, 200, JSON.stringify(replay.body));
  assert.equal(replay.body.read, 4, "the erased person's events are left out of the read");
  assert.equal(replay.body.replayed, 4);

  const rebuilt = await call("GET", `/admin/profiles?id=user_id:${keep}-user`);
  assert.equal(rebuilt.status, 200);
  assert.deepEqual(rebuilt.body.identifiers.map((i) => i.id).sort(), before.body.identifiers.map((i) => i.id).sort());
  assert.deepEqual(rebuilt.body.traits, before.body.traits);
  assert.deepEqual(rebuilt.body.segments, ["paid-pricing-interest"]);
  assert.equal((await call("GET", `/admin/profiles?id=user_id:${gone}-user`)).status, 404);
  const decision = await call("GET", `/v1/decide?anonymousId=${keep}`);
  assert.deepEqual(decision.body.segments, ["paid-pricing-interest"]);
});

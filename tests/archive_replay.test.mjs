//! The R2 archive and replay on the local Workers runtime: accepted events are archived
//! as NDJSON, a replay rebuilds every profile and decision from the archive, and an
//! erased person stays erased through a replay, as do an operator's merges. A queue
//! larger than one SQL value may hold is archived in several objects.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, sep } from "node:path";
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

test("a replay keeps the operator merges in force, not the undone ones", async () => {
  const u = (name) => `${name}-${process.pid}`;
  const batch = ["x", "a", "b"].map((name) => ({
    type: "identify",
    messageId: `op-${u(name)}`,
    userId: u(name),
    anonymousId: `anon-${u(name)}`,
  }));
  assert.equal((await call("POST", "/v1/batch", { writeKey: "demo-write-key", batch })).body.accepted, 3);
  const kept = await call("POST", "/admin/merges", { from: `user_id:${u("a")}`, into: `user_id:${u("x")}` });
  assert.equal(kept.status, 200, JSON.stringify(kept.body));
  const undone = await call("POST", "/admin/merges", { from: `user_id:${u("b")}`, into: `user_id:${u("x")}` });
  assert.equal(undone.status, 200, JSON.stringify(undone.body));
  assert.equal((await call("POST", `/admin/merges/${undone.body.id}/undo`)).status, 200);

  const replay = await call("POST", "/admin/replay");
  assert.equal(replay.status, 200, JSON.stringify(replay.body));
  const x = await call("GET", `/admin/profiles?id=user_id:${u("x")}`);
  const ids = x.body.identifiers.map((i) => i.id);
  assert.ok(ids.includes(`user_id:${u("a")}`), `a is still joined to x: ${ids}`);
  assert.ok(!ids.includes(`user_id:${u("b")}`), `b stays apart: ${ids}`);
  assert.ok(x.body.merges.some((m) => m.operator && m.undone === null), JSON.stringify(x.body.merges));
  const b = await call("GET", `/admin/profiles?id=user_id:${u("b")}`);
  assert.notEqual(b.body.id, x.body.id);

  // Undoing the record the profile now shows (made by the replay) keeps a apart through
  // the next replay too.
  const shown = x.body.merges.find((m) => m.operator && m.undone === null);
  assert.equal((await call("POST", `/admin/merges/${shown.id}/undo`)).status, 200);
  assert.equal((await call("POST", "/admin/replay")).status, 200);
  const after = await call("GET", `/admin/profiles?id=user_id:${u("x")}`);
  const left = after.body.identifiers.map((i) => i.id);
  assert.ok(!left.includes(`user_id:${u("a")}`), `a stays apart after the undo and a replay: ${left}`);
});

/** Every file under `dir`, depth first. */
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

test("a queue larger than one SQL value may hold is archived, in objects under 1 MiB", async () => {
  // Six bodies of about 430 KB: 2.6 MB queued, past the 2 MB the platform takes in one SQL
  // value, so the flush has to cut it into several objects.
  const tag = `big-${process.pid}`;
  const note = "n".repeat(12_000);
  let sent = 0;
  for (let b = 0; b < 6; b++) {
    const batch = Array.from({ length: 35 }, (_, i) => ({
      type: "track",
      event: "Read",
      messageId: `${tag}-${b}-${i}`,
      anonymousId: `${tag}-${b}`,
      properties: { note },
    }));
    const res = await call("POST", "/v1/batch", { writeKey: "demo-write-key", batch });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.accepted, 35);
    sent += 35;
  }

  // The flush runs from the alarm a few seconds later; read the local R2's stored objects.
  const r2 = join(worker.persistDir, "state", "v3", "r2");
  let archived = new Map();
  for (let wait = 0; wait < 30 && archived.size < sent; wait++) {
    await sleep(1000);
    archived = new Map();
    for (const file of existsSync(r2) ? filesUnder(r2) : []) {
      if (!file.includes(`${sep}blobs${sep}`)) continue;
      const text = readFileSync(file, "utf8");
      const ours = text.split("\n").filter((line) => line.includes(`"${tag}-`));
      for (const line of ours) archived.set(JSON.parse(line).messageId, file);
    }
  }
  assert.equal(archived.size, sent, "every queued event reached the archive");
  const objects = [...new Set(archived.values())].map((file) => statSync(file).size);
  assert.ok(objects.length >= 3, `2.6 MB went to several objects (sizes ${objects})`);
  for (const size of objects) assert.ok(size <= 1 << 20, `an object of ${size} bytes is under 1 MiB`);
});

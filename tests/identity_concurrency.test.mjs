//! Concurrency of the identity graph on the local Workers runtime: a brand-new visitor's
//! first page view and their identify arrive at the same moment, over separate requests,
//! many times over. The Durable Object is the single writer of the graph, so every trial
//! ends with one profile holding both ids, identified; never two half-profiles.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { startWorker } from "./lib/worker.mjs";

const TRIALS = 60;
const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
const ADMIN = { authorization: "Bearer demo-admin-token" };

let worker;
before(async () => {
  worker = await startWorker();
});
after(async () => {
  await worker?.stop();
});

function send(route, event) {
  return fetch(`${worker.url}/v1/${route}`, {
    method: "POST",
    headers: { "content-type": "text/plain", "user-agent": UA },
    body: JSON.stringify({ writeKey: "demo-write-key", ...event }),
  });
}

test("a first page and an identify sent together always make one identified profile", async () => {
  const trials = [];
  for (let i = 0; i < TRIALS; i++) {
    const anon = `race-anon-${process.pid}-${i}`;
    const user = `race-user-${process.pid}-${i}`;
    trials.push({ anon, user });
  }
  // Several trials in flight at once, each trial's two requests concurrent.
  for (let start = 0; start < TRIALS; start += 10) {
    await Promise.all(
      trials.slice(start, start + 10).flatMap(({ anon, user }) => [
        send("p", { messageId: `${anon}-page`, anonymousId: anon, context: { page: { path: "/" } } }),
        send("i", { messageId: `${anon}-identify`, anonymousId: anon, userId: user }),
      ]).map(async (req) => assert.equal((await req).status, 200)),
    );
  }
  for (const { anon, user } of trials) {
    const byUser = await (await fetch(`${worker.url}/admin/profiles?id=user_id:${user}`, { headers: ADMIN })).json();
    const byAnon = await (await fetch(`${worker.url}/admin/profiles?id=anonymous_id:${anon}`, { headers: ADMIN })).json();
    assert.equal(byUser.id, byAnon.id, `${anon}: one profile`);
    assert.deepEqual(byUser.identifiers.map((i) => i.id).sort(), [`anonymous_id:${anon}`, `user_id:${user}`]);
    assert.equal(byUser.events, 2);
  }
});

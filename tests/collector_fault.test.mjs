//! The short fault test: the collector under load with retrying clients, the local runtime
//! killed (KILL to its whole process group, like a crash) mid-load and restarted on the
//! same `--persist-to` folder. Every event acknowledged before the crash is still stored
//! (resent, each comes back a duplicate), and the retrying clients deliver the rest: the
//! store ends up holding every generated event exactly once. `make fault` runs the 30 s
//! version of the same thing.

import assert from "node:assert/strict";
import { test } from "node:test";

import { startWorker } from "./lib/worker.mjs";
import { drive, metricsOf, verify } from "./load/drive.mjs";

test("a crash mid-load loses no acknowledged event, and retries deliver the rest", async (t) => {
  const worker = await startWorker({ t, vars: { WEFT_RATE_LIMIT: "off" }, logLevel: "warn" });
  const storedBefore = (await metricsOf(worker.url)).accepted;
  const pgidBefore = worker.pgid;

  const progress = { acked: 0 };
  let ackedAtCrash = 0;
  const running = drive({
    url: worker.url,
    seconds: 6,
    connections: 4,
    batchSize: 50,
    retry: true,
    onSecond: (s) => (progress.acked = s.acked),
  });
  const crash = (async () => {
    await new Promise((ok) => setTimeout(ok, 3_000));
    ackedAtCrash = progress.acked;
    await worker.restart({ signal: "SIGKILL" });
  })();
  const [done] = await Promise.all([running, crash]);

  assert.notEqual(worker.pgid, pgidBefore, "the runtime was replaced");
  assert.ok(ackedAtCrash > 0, "events were acknowledged before the crash");
  const networkErrors = Object.keys(done.statuses).filter((s) => !/^\d+$/.test(s));
  assert.ok(networkErrors.length > 0, `the crash was felt: ${JSON.stringify(done.statuses)}`);
  const fivexx = Object.keys(done.statuses).filter((s) => /^5\d\d$/.test(s));
  assert.deepEqual(fivexx, [], JSON.stringify(done.statuses));

  const checked = await verify(worker.url, done, { storedBefore });
  assert.equal(checked.resentStoredAgain, 0, "every acknowledged event survived the crash");
  assert.equal(checked.resent, done.batches.length * 50);
  assert.equal(checked.lost, 0);
  assert.equal(checked.stored, done.generated, "each generated event stored exactly once");
});

//! `make load` and `make fault`: drive the built worker under `wrangler dev` at saturation
//! over loopback, then check that every acknowledged event is stored.
//!
//! Load (default): 30 s of `/v1/batch` requests with 100 events each, every messageId
//! unique, on a fresh worker with the rate limit off (`WEFT_RATE_LIMIT=off`: this measures
//! the collector, not the limit). Prints events/s, p50/p99 latency of the 200 answers,
//! errors, and acknowledged vs stored; resends every 10th acknowledged batch, which must
//! come back all duplicates. Fails on any 5xx or lost event.
//!
//! Fault (`--fault`): the same load with retrying clients; halfway through, the runtime's
//! process group is killed (KILL, like a crash) and restarted on the same `--persist-to`
//! folder while the clients keep retrying. Afterwards every acknowledged batch is resent
//! (all must be duplicates: they survived the crash) and the store must hold every
//! generated event exactly once. Fails otherwise.
//!
//! The worker runs from a private copy of `crates/edge/build`, so a build finishing in the
//! checkout meanwhile cannot reload it mid-run.
//!
//! Usage: node tests/load/load.mjs [--seconds 30] [--connections 8] [--batch 100]
//!          [--fault] [--keep-rate-limit] [--url http://127.0.0.1:<port>]
//! With --url it drives a worker you started (and cannot kill it: --fault needs none).

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { ROOT, startWorker } from "../lib/worker.mjs";
import { drive, metricsOf, summary, verify } from "./drive.mjs";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "30" },
    connections: { type: "string", default: "8" },
    batch: { type: "string", default: "100" },
    fault: { type: "boolean", default: false },
    "keep-rate-limit": { type: "boolean", default: false },
    url: { type: "string" },
  },
});
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const batchSize = Number(args.batch);
if (args.fault && args.url) {
  console.error("load: --fault starts (and kills) its own worker; drop --url");
  process.exit(2);
}

/**
 * A private copy of the built worker and a wrangler configuration that runs it.
 * `wrangler dev` reloads when its entry file changes, answering 503 to requests in flight
 * ("Your worker restarted mid-request"): a build finishing elsewhere in the checkout
 * during a run would be counted against the collector.
 */
function privateBuild() {
  const dir = mkdtempSync(join(tmpdir(), "weft-load-build-"));
  cpSync(join(ROOT, "crates/edge/build"), join(dir, "build"), { recursive: true });
  const config = readFileSync(join(ROOT, "wrangler.toml"), "utf8")
    .replace(/^main = .*$/m, `main = ${JSON.stringify(join(dir, "build/index.js"))}`)
    .replace(/^directory = .*$/m, `directory = ${JSON.stringify(join(ROOT, "www"))}`);
  writeFileSync(join(dir, "wrangler.toml"), config);
  return { dir, config: join(dir, "wrangler.toml") };
}

const vars = args["keep-rate-limit"] ? {} : { WEFT_RATE_LIMIT: "off" };
const build = args.url ? null : privateBuild();
const worker = build && (await startWorker({ vars, logLevel: "warn", config: build.config }));
const url = args.url ?? worker.url;
let failed = false;
try {
  const storedBefore = (await metricsOf(url)).accepted;
  const mode = args.fault ? "fault" : "load";
  console.log(
    `${mode}: ${seconds} s, ${connections} connections, ${batchSize} events a batch, ${url}`,
  );
  const t0 = Date.now();
  let restart = null;
  if (args.fault) {
    restart = (async () => {
      await new Promise((ok) => setTimeout(ok, (seconds * 1_000) / 2));
      const killed = Date.now();
      console.log("fault: killing the runtime's process group (KILL) mid-load");
      await worker.restart({ signal: "SIGKILL" });
      console.log(`fault: restarted on the same state, answering after ${Date.now() - killed} ms`);
    })();
  }
  const stats = await drive({
    url,
    seconds,
    connections,
    batchSize,
    retry: args.fault,
    onSecond: (s) => {
      const at = Math.round((Date.now() - t0) / 1_000);
      if (at % 5 === 0) console.log(`${at} s: ${s.acked} events acknowledged, ${s.requests} req`);
    },
  });
  await restart;
  const checked = await verify(url, stats, {
    storedBefore,
    sampleEvery: args.fault ? 1 : 10,
  });
  console.log(summary(stats, checked));

  const fivexx = Object.entries(stats.statuses).filter(([s]) => /^5\d\d$/.test(s));
  if (fivexx.length > 0) {
    console.error(`FAIL: 5xx answers: ${JSON.stringify(Object.fromEntries(fivexx))}`);
    failed = true;
  }
  if (checked.lost > 0 || checked.resentStoredAgain > 0) {
    console.error("FAIL: acknowledged events were lost");
    failed = true;
  }
  if (args.fault && checked.stored !== stats.generated) {
    console.error(
      `FAIL: ${stats.generated} events generated and retried until acknowledged, ` +
        `${checked.stored} stored`,
    );
    failed = true;
  }
  if (!args.fault && !args.url && checked.unacknowledgedStored > 0) {
    console.error("note: some events were stored whose answer never arrived (not a loss)");
  }
} finally {
  await worker?.stop();
  if (build) rmSync(build.dir, { recursive: true, force: true });
}
console.log(failed ? "load: FAILED" : "load: passed");
process.exit(failed ? 1 : 0);

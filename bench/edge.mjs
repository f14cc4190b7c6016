//! weft's worker on the local Workers runtime under wrk: `/v1/decide` beside a bare KV-read
//! route, `/v1/batch` with 100-event batches, the runtime CPU each costs, and how fresh a
//! decision is after the event that changes it.
//!
//! One worker (`tests/lib/worker.mjs`, `WEFT_BENCH=1` so the bench routes exist,
//! `WEFT_RATE_LIMIT=off` so the write key's rate limit does not cap the load; a copy of the
//! build, so a rebuild in the checkout cannot restart it) serves every measurement, so each
//! comparison is made in one run on one runtime:
//! - Decide vs bare: a visitor is seeded into a segment through the collector; the bare
//!   route's KV key `bench:bare` is given the same decision doc with wrangler's local KV
//!   put against the worker's own `--persist-to` folder. Rounds of no-op, bare and decide
//!   runs (order rotated each round); the ratio is decide/bare requests per second, a
//!   median of the rounds' ratios.
//! - CPU: the runtime's CPU seconds (every workerd process of the worker, from /proc) over
//!   each run divided by its requests, minus the no-op route's per-request CPU measured in
//!   the same worker. Batches are counted by the collector's `accepted` counter (events
//!   / 100), so a request cut off when wrk stops is not miscounted.
//! - Batches: wrk runs of `bench/wrk/batch.lua` (100 events, unique messageIds) until at
//!   least 2,000 batches are in, or the time cap passes (then the part fails). The same
//!   bodies then go to `/v1/bench/hop`, which carries them to the identity graph's object
//!   and back unread: the runtime's own floor for a batch.
//! - Freshness: visitors are first primed (one paid-search page view of /pricing each);
//!   then, one visitor at a time, the second /pricing view is posted and `/v1/decide` polled
//!   from the moment the collector acknowledges it until the segment shows.
//!
//! Knobs for trying things out (the table's figures use the defaults): `WEFT_BENCH_SECONDS`
//! (4) and `WEFT_BENCH_ROUNDS` (5) for the read routes, `WEFT_BENCH_MIN_BATCHES` (2000),
//! `WEFT_BENCH_BATCH_SECONDS` (15) and `WEFT_BENCH_BATCH_CAP` (360) for the batches,
//! `WEFT_BENCH_FRESHNESS_TRIALS` (200).
//!
//! # Limitations
//! The runtime reports no per-request CPU, so CPU figures are whole-process deltas; other
//! programs on the machine do not enter them, but their load slows the runtime and inflates
//! the latencies. The worker's storage lives under `$TMPDIR` (bench.sh points it at
//! /dev/shm when it exists), so local disk speed is not measured: Cloudflare's storage is
//! not a local disk either.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { DEMO_WRITE_KEY, startWorker } from "../tests/lib/worker.mjs";
import {
  BenchError,
  median,
  percentile,
  ROOT,
  round,
  runPart,
  runtimeCpuSeconds,
  saveResult,
  settle,
  snapshotWeftWorker,
  wrk,
  wrkWithCpu,
} from "./lib.mjs";

const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.WEFT_BENCH_ROUNDS ?? 5);
const MIN_BATCHES = Number(process.env.WEFT_BENCH_MIN_BATCHES ?? 2000);
const BATCH_RUN_SECONDS = Number(process.env.WEFT_BENCH_BATCH_SECONDS ?? 15);
const BATCH_CAP_SECONDS = Number(process.env.WEFT_BENCH_BATCH_CAP ?? 360);
const FRESHNESS_TRIALS = Number(process.env.WEFT_BENCH_FRESHNESS_TRIALS ?? 200);
const FRESHNESS_LIMIT_MS = 5_000;
const ADMIN = { authorization: "Bearer demo-admin-token" };
const UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " +
  "Chrome/131.0.0.0 Safari/537.36";
const SEGMENT = "paid-pricing-interest";
const LANDING = "/pricing?utm_source=google&utm_medium=cpc&utm_campaign=spring";

runPart("edge", async () => {
  const snapshot = snapshotWeftWorker();
  const worker = await startWorker({
    config: snapshot.config,
    // The per-write-key rate limit (weft.toml) would refuse the load: capacity is measured.
    vars: { WEFT_BENCH: "1", WEFT_RATE_LIMIT: "off" },
    logLevel: "error",
  }).catch((error) => {
    snapshot.remove();
    throw error;
  });
  try {
    const seeded = await seed(worker);
    const reads = await decideVsBare(worker, seeded);
    const batches = await batchRuns(worker, reads.noopCpuMs);
    batches.hopCpuMs = await hopCpu(worker, reads.noopCpuMs);
    const freshness = await freshnessTrials(worker);
    saveResult("edge", { seededDoc: seeded.doc, ...reads, batches, freshness });
  } catch (error) {
    const tail = worker.logs().split("\n").slice(-15).join("\n");
    error.message += `\nthe worker's last log lines:\n${tail}`;
    throw error;
  } finally {
    await worker.stop();
    snapshot.remove();
  }
});

/** A page view of `path` by `visitor`, as the SDK sends it. */
function pageView(visitor, path, messageId) {
  const [bare, query = ""] = path.split("?");
  const url = `http://127.0.0.1${path}`;
  return {
    type: "page",
    messageId,
    anonymousId: visitor,
    properties: { path: bare, url },
    context: {
      page: { path: bare, url, search: query ? `?${query}` : "" },
      userAgent: UA,
    },
  };
}

/** Posts events to the collector; fails unless every one is accepted. */
async function post(worker, events) {
  const res = await fetch(`${worker.url}/v1/batch`, {
    method: "POST",
    headers: { "content-type": "text/plain", "user-agent": UA },
    body: JSON.stringify({ writeKey: DEMO_WRITE_KEY, batch: events }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new BenchError(`/v1/batch answered ${res.status}: ${text}`);
  const answer = JSON.parse(text);
  if (answer.accepted !== events.length) {
    throw new BenchError(`/v1/batch accepted ${answer.accepted} of ${events.length}: ${text}`);
  }
  return answer;
}

async function decideDoc(worker, visitor) {
  const res = await fetch(`${worker.url}/v1/decide?anonymousId=${encodeURIComponent(visitor)}`);
  const text = await res.text();
  if (res.status !== 200) throw new BenchError(`/v1/decide answered ${res.status}: ${text}`);
  return text;
}

async function acceptedEvents(worker) {
  const res = await fetch(`${worker.url}/admin/metrics`, { headers: ADMIN });
  const text = await res.text();
  if (res.status !== 200) throw new BenchError(`/admin/metrics answered ${res.status}: ${text}`);
  const accepted = JSON.parse(text).accepted;
  if (typeof accepted !== "number") throw new BenchError(`no accepted count in ${text}`);
  return accepted;
}

/**
 * Puts one visitor in the segment through the collector and copies its decision doc to the
 * bare route's key, so both routes read a doc of the same size.
 */
async function seed(worker) {
  const visitor = `bench-decide-${Date.now()}`;
  await post(worker, [
    pageView(visitor, LANDING, `${visitor}-1`),
    pageView(visitor, "/pricing", `${visitor}-2`),
  ]);
  let doc = "";
  for (let i = 0; i < 100 && !doc.includes(SEGMENT); i++) {
    doc = await decideDoc(worker, visitor);
    if (!doc.includes(SEGMENT)) await sleep(50);
  }
  if (!doc.includes(SEGMENT)) {
    throw new BenchError(`seeded visitor never entered ${SEGMENT}; /v1/decide says ${doc}`);
  }

  const wrangler = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
  execFileSync(
    process.execPath,
    [
      wrangler,
      "kv",
      "key",
      "put",
      "--binding",
      "DECISIONS",
      "bench:bare",
      doc,
      "--local",
      "--persist-to",
      join(worker.persistDir, "state"),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const bare = await (await fetch(`${worker.url}/v1/bench/bare`)).text();
  if (bare !== doc) {
    throw new BenchError(`/v1/bench/bare answers ${JSON.stringify(bare)}, not the seeded doc`);
  }
  const noop = await fetch(`${worker.url}/v1/bench/noop`);
  await noop.body?.cancel();
  if (noop.status !== 200) throw new BenchError(`/v1/bench/noop answered ${noop.status}`);
  return { visitor, doc };
}

/** Rounds of no-op, bare and decide runs; ratios and CPU per request. */
async function decideVsBare(worker, seeded) {
  const routes = {
    noop: `${worker.url}/v1/bench/noop`,
    bare: `${worker.url}/v1/bench/bare`,
    decide: `${worker.url}/v1/decide?anonymousId=${encodeURIComponent(seeded.visitor)}`,
  };
  for (const url of Object.values(routes)) await wrk({ url, seconds: 2 });

  const orders = [
    ["noop", "bare", "decide"],
    ["decide", "noop", "bare"],
    ["bare", "decide", "noop"],
  ];
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = {};
    for (const name of orders[r % orders.length]) {
      const m = await wrkWithCpu(worker, { url: routes[name], seconds: SECONDS });
      round[name] = { ...m, cpuMsPerRequest: (1000 * m.cpuSeconds) / m.requests };
    }
    rounds.push(round);
    console.log(
      `edge: round ${r + 1}: noop ${round.noop.rps.toFixed(0)}/s, bare ` +
        `${round.bare.rps.toFixed(0)}/s, decide ${round.decide.rps.toFixed(0)}/s`,
    );
  }

  const pick = (name, key) => median(rounds.map((round) => round[name][key]));
  const summary = (name) => ({
    rps: round(pick(name, "rps"), 1),
    p50Ms: round(pick(name, "p50Ms")),
    p99Ms: round(pick(name, "p99Ms")),
    cpuMsPerRequest: round(pick(name, "cpuMsPerRequest")),
  });
  const noopCpuMs = pick("noop", "cpuMsPerRequest");
  const netCpu = (name) =>
    round(median(rounds.map((x) => x[name].cpuMsPerRequest - x.noop.cpuMsPerRequest)), 4);
  return {
    runSeconds: SECONDS,
    rounds: rounds.length,
    noop: summary("noop"),
    bare: summary("bare"),
    decide: summary("decide"),
    ratioDecideOverBare: round(median(rounds.map((x) => x.decide.rps / x.bare.rps))),
    ratios: rounds.map((x) => round(x.decide.rps / x.bare.rps)),
    decideCpuMsOverNoop: netCpu("decide"),
    bareCpuMsOverNoop: netCpu("bare"),
    noopCpuMs,
  };
}

/**
 * The runtime's own floor for a batch: the same 100-event bodies posted to
 * `/v1/bench/hop`, which carries them to the identity graph's object and back unread.
 * CPU per request minus the no-op route's, a median of ROUNDS runs.
 */
async function hopCpu(worker, noopCpuMs) {
  const url = `${worker.url}/v1/bench/hop`;
  const runs = [];
  for (let i = 0; i < ROUNDS; i += 1) {
    const m = await wrkWithCpu(worker, {
      url,
      seconds: SECONDS,
      script: "batch.lua",
      args: [`hop${i}`, DEMO_WRITE_KEY],
    });
    runs.push((1000 * m.cpuSeconds) / m.requests - noopCpuMs);
  }
  console.log(`edge: hop runs: ${runs.map((x) => x.toFixed(2)).join(", ")} ms per request`);
  return round(median(runs));
}

/** wrk runs of 100-event batches until MIN_BATCHES are in (at least ROUNDS runs). */
async function batchRuns(worker, noopCpuMs) {
  const url = `${worker.url}/v1/batch`;
  const tag = `b${Date.now().toString(36)}`;
  await wrk({ url, seconds: 2, script: "batch.lua", args: [`${tag}w`, DEMO_WRITE_KEY] });

  const started = Date.now();
  const runs = [];
  let batches = 0;
  while (runs.length < ROUNDS || batches < MIN_BATCHES) {
    if ((Date.now() - started) / 1000 > BATCH_CAP_SECONDS) {
      throw new BenchError(
        `only ${batches} batches of 100 events in ${BATCH_CAP_SECONDS} s ` +
          `(need ${MIN_BATCHES}); the collector runs at ` +
          `${median(runs.map((x) => x.rps)).toFixed(1)} batches/s here`,
      );
    }
    await settle(worker);
    const acceptedBefore = await acceptedEvents(worker);
    const cpuBefore = runtimeCpuSeconds(worker);
    const m = await wrk({
      url,
      seconds: BATCH_RUN_SECONDS,
      script: "batch.lua",
      args: [`${tag}r${runs.length}`, DEMO_WRITE_KEY],
    });
    await settle(worker);
    const cpuSeconds = runtimeCpuSeconds(worker) - cpuBefore;
    const events = (await acceptedEvents(worker)) - acceptedBefore;
    // The metrics request itself is not a batch; its CPU is below a tick.
    const done = events / 100;
    batches += done;
    runs.push({
      ...m,
      eventsPerSecond: m.rps * 100,
      batches: done,
      cpuMsPerBatch: (1000 * cpuSeconds) / done - noopCpuMs,
    });
    console.log(
      `edge: batch run ${runs.length}: ${m.rps.toFixed(1)} batches/s, p50 ` +
        `${m.p50Ms.toFixed(0)} ms, ${done} batches, total ${batches}`,
    );
  }
  const pick = (key) => median(runs.map((x) => x[key]));
  return {
    runs: runs.length,
    runSeconds: BATCH_RUN_SECONDS,
    totalBatches: batches,
    rps: round(pick("rps"), 2),
    eventsPerSecond: round(pick("eventsPerSecond"), 0),
    p50Ms: round(pick("p50Ms"), 1),
    p99Ms: round(pick("p99Ms"), 1),
    cpuMsPerBatch: round(pick("cpuMsPerBatch")),
    cpuMsPerBatchRuns: runs.map((x) => round(x.cpuMsPerBatch)),
  };
}

/** How long after the qualifying event's acknowledgement `/v1/decide` reflects it. */
async function freshnessTrials(worker) {
  const tag = `f${Date.now().toString(36)}`;
  const visitors = Array.from({ length: FRESHNESS_TRIALS }, (_, i) => `${tag}-${i}`);
  for (let i = 0; i < visitors.length; i += 100) {
    const slice = visitors.slice(i, i + 100);
    await post(worker, slice.map((v) => pageView(v, LANDING, `${v}-prime`)));
  }
  // KV takes one write per key per second: let the priming writes' second pass.
  await sleep(1_500);

  const delays = [];
  let missed = 0;
  for (const visitor of visitors) {
    await post(worker, [pageView(visitor, "/pricing", `${visitor}-qualify`)]);
    const acked = performance.now();
    let seen = false;
    while (performance.now() - acked < FRESHNESS_LIMIT_MS) {
      if ((await decideDoc(worker, visitor)).includes(SEGMENT)) {
        seen = true;
        break;
      }
    }
    const delay = performance.now() - acked;
    if (!seen) missed += 1;
    delays.push(seen ? delay : Infinity);
  }
  if (missed === delays.length) {
    throw new BenchError(`no decision reflected its event within ${FRESHNESS_LIMIT_MS} ms`);
  }
  const finite = (x) => (Number.isFinite(x) ? round(x, 1) : `>${FRESHNESS_LIMIT_MS}`);
  return {
    trials: delays.length,
    missed,
    p50Ms: finite(percentile(delays, 50)),
    p95Ms: finite(percentile(delays, 95)),
    maxMs: finite(Math.max(...delays)),
  };
}

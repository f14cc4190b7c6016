//! A loopback load generator for the collector, and the checks that nothing acknowledged
//! was lost. `tests/load/load.mjs` (`make load`, `make fault`) and the short fault test in
//! `tests/collector_fault.test.mjs` drive the worker with it.
//!
//! `drive()` keeps `connections` keep-alive connections busy posting `/v1/batch` bodies of
//! `batchSize` track events, every one with a messageId of its own, for `seconds`. An event
//! counts as acknowledged only when a 200 answer counted it in `accepted`; a 429 or any
//! other answer is not an acknowledgement. With `retry`, a batch that was not answered 200
//! is sent again (after the 429's Retry-After, or a short backoff) until it is, the way
//! the SDK retries, so every generated event is eventually delivered; without it the batch
//! is given up and counted as an error.
//!
//! `verify()` then compares what was acknowledged with what the worker stored
//! (`/admin/metrics` accepted, minus what it held before) and resends acknowledged batches:
//! each of their events must come back as a duplicate, which proves it is still stored.

import http from "node:http";
import { randomUUID } from "node:crypto";

import { DEMO_SECRETS, DEMO_WRITE_KEY } from "../lib/worker.mjs";

const AUTH = `Basic ${Buffer.from(`${DEMO_WRITE_KEY}:`).toString("base64")}`;
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Drives the collector at `url` until `seconds` pass or `signal` aborts.
 *
 * @param {object} options
 * @param {string} options.url the worker's base URL
 * @param {number} [options.seconds] how long to generate new batches (30)
 * @param {number} [options.connections] concurrent requests (8)
 * @param {number} [options.batchSize] events per batch (100)
 * @param {boolean} [options.retry] resend a batch until it is answered 200 (false)
 * @param {(stats: object) => void} [options.onSecond] called once a second with the stats
 * @returns {Promise<object>} stats: requests, latencies (ms of 200 answers), statuses
 *   (count by status or error code), samples (the first answer of each), acked
 *   (events counted in 200s), generated, batches
 *   (every batch with its ids, whether acknowledged and what it was answered), elapsed s
 */
export async function drive(options) {
  const { url, seconds = 30, connections = 8, batchSize = 100, retry = false, onSecond } = options;
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const run = randomUUID().slice(0, 8);
  const stats = {
    requests: 0,
    latencies: [],
    statuses: {},
    samples: {},
    acked: 0,
    generated: 0,
    batches: [],
    elapsed: 0,
  };
  const started = Date.now();
  const until = started + seconds * 1_000;
  const ticker = onSecond && setInterval(() => onSecond(stats), 1_000);

  const loop = async (connection) => {
    for (let seq = 0; Date.now() < until; seq++) {
      const batch = makeBatch(`${run}-${connection}-${seq}`, batchSize);
      stats.batches.push(batch);
      stats.generated += batchSize;
      for (let attempt = 0; ; attempt++) {
        const t0 = performance.now();
        const res = await send(url, batch.body, agent);
        stats.requests += 1;
        const key = res.status ?? res.error;
        stats.statuses[key] = (stats.statuses[key] ?? 0) + 1;
        if (key !== 200 && !(key in stats.samples)) stats.samples[key] = res.text ?? "";
        if (res.status === 200) {
          stats.latencies.push(performance.now() - t0);
          batch.acked = true;
          batch.accepted = (batch.accepted ?? 0) + res.json.accepted;
          stats.acked += res.json.accepted;
          break;
        }
        if (!retry) break;
        const wait = res.status === 429 ? Number(res.retryAfter ?? 1) * 1_000 : backoff(attempt);
        await new Promise((ok) => setTimeout(ok, wait));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, (_, i) => loop(i)));
  } finally {
    if (ticker) clearInterval(ticker);
    agent.destroy();
  }
  stats.elapsed = (Date.now() - started) / 1_000;
  return stats;
}

/**
 * Compares what was acknowledged with what the worker stored, and resends acknowledged
 * batches (all, or every `sampleEvery`-th) expecting only duplicates.
 *
 * @param {string} url
 * @param {object} stats what `drive()` returned
 * @param {object} [options]
 * @param {number} [options.storedBefore] `/admin/metrics` accepted before the run (0)
 * @param {number} [options.sampleEvery] resend every n-th acknowledged batch (1: all)
 * @param {number} [options.connections] concurrent resends (4)
 * @returns {Promise<{ stored: number, lost: number, unacknowledgedStored: number,
 *   resent: number, resentStoredAgain: number }>} `lost`: acknowledged events not
 *   stored, from the counts; `resentStoredAgain`: resent acknowledged events the worker
 *   took as new, i.e. had lost (both must be 0)
 */
export async function verify(url, stats, options = {}) {
  const { storedBefore = 0, sampleEvery = 1, connections = 4 } = options;
  const stored = (await metricsOf(url)).accepted - storedBefore;
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const acked = stats.batches.filter((b) => b.acked);
  const sample = acked.filter((_, i) => i % sampleEvery === 0);
  let resent = 0;
  let resentStoredAgain = 0;
  const queue = [...sample];
  const worker = async () => {
    for (let batch = queue.shift(); batch; batch = queue.shift()) {
      for (let attempt = 0; ; attempt++) {
        const res = await send(url, batch.body, agent);
        if (res.status === 200) {
          resent += batch.size;
          resentStoredAgain += res.json.accepted;
          break;
        }
        if (attempt > 20) throw new Error(`resend answered ${res.status ?? res.error}`);
        await new Promise((ok) => setTimeout(ok, backoff(attempt)));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
  return {
    stored,
    lost: Math.max(0, stats.acked - stored),
    unacknowledgedStored: Math.max(0, stored - stats.acked),
    resent,
    resentStoredAgain,
  };
}

/** The counters of `/admin/metrics`. */
export async function metricsOf(url) {
  const res = await fetch(`${url}/admin/metrics`, {
    headers: { authorization: `Bearer ${DEMO_SECRETS.WEFT_ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}`);
  return res.json();
}

/** The p-th percentile (0-100) of a list of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, rank)];
}

/** One line per figure, for people. */
export function summary(stats, checked) {
  const errors = Object.entries(stats.statuses)
    .filter(([status]) => status !== "200")
    .map(([status, n]) => `${status}: ${n}`)
    .join(", ");
  const lines = [
    `duration     ${stats.elapsed.toFixed(1)} s, ${stats.requests} requests`,
    `events/s     ${(stats.acked / stats.elapsed).toFixed(0)} acknowledged ` +
      `(${(stats.requests / stats.elapsed).toFixed(1)} req/s)`,
    `latency      p50 ${percentile(stats.latencies, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(stats.latencies, 99).toFixed(1)} ms (200 answers)`,
    `errors       ${errors || "none"}`,
  ];
  for (const [status, text] of Object.entries(stats.samples).filter(([, t]) => t)) {
    lines.push(`  first ${status}: ${text.slice(0, 300).replace(/\s+/g, " ")}`);
  }
  if (checked) {
    lines.push(
      `acknowledged ${stats.acked} events, stored ${checked.stored}` +
        ` (stored but unacknowledged: ${checked.unacknowledgedStored})`,
      `resent       ${checked.resent} acknowledged events: ` +
        `${checked.resent - checked.resentStoredAgain} duplicates, ` +
        `${checked.resentStoredAgain} stored again`,
      `lost         ${checked.lost + checked.resentStoredAgain}`,
    );
  }
  return lines.join("\n");
}

function makeBatch(prefix, size) {
  const anonymousId = `load-${prefix}`;
  const ids = Array.from({ length: size }, (_, i) => `load-${prefix}-${i}`);
  const now = new Date().toISOString();
  const batch = ids.map((messageId, i) => ({
    type: "track",
    event: i % 10 === 0 ? "Product Added" : "Viewed",
    messageId,
    anonymousId,
    timestamp: now,
    properties: { i, sku: `sku-${i % 17}` },
    context: { page: { path: `/p/${i % 50}` } },
  }));
  const body = JSON.stringify({ batch, sentAt: now });
  return { ids, body, size, acked: false, accepted: 0 };
}

function backoff(attempt) {
  return Math.min(2_000, 100 * 2 ** attempt);
}

/** Posts a body; resolves with the status and JSON answer, or the network error's code. */
function send(url, body, agent) {
  return new Promise((resolve) => {
    const req = http.request(
      `${url}/v1/batch`,
      {
        method: "POST",
        agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: {
          authorization: AUTH,
          "content-type": "text/plain",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            // A non-JSON answer is counted by its status.
          }
          resolve({ status: res.statusCode, json, text, retryAfter: res.headers["retry-after"] });
        });
        res.on("error", (e) => resolve({ error: e.code ?? "response_error" }));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e) => resolve({ error: e.code ?? "request_error" }));
    req.end(body);
  });
}

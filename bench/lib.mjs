//! Pieces every part of `make bench` shares: medians, the wrk runner, the runtime's CPU
//! seconds from /proc, a loopback HTTP server, and where results go.
//!
//! Each part (`sizes.mjs`, `native.mjs`, `load.mjs`, `edge.mjs`, `segment-edge.mjs`) writes
//! one JSON file under `.weft/bench/results/`; `table.mjs` turns them into the table. A part
//! that cannot measure what it must throws a `BenchError` and exits 1 with the reason, so the
//! table never shows a silent gap.
//!
//! wrk runs from Debian on loopback with 2 threads and 8 connections unless told otherwise;
//! `bench/wrk/report.lua` makes it print one `WEFT_WRK {…}` line that `wrk()` parses. Runs
//! where wrk saw errors (socket errors, timeouts, non-2xx answers) fail the part.

import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * What a page loads of weft's SDK comes from here: `www/`, or the copy scripts/bench.sh takes
 * right after building, so that a rebuild by someone else in the same checkout cannot
 * change the files halfway through a run.
 */
export const WWW = process.env.WEFT_BENCH_WWW ?? join(ROOT, "www");

/** Where the wrk Lua scripts live. */
export const WRK_DIR = join(ROOT, "bench/wrk");

/** Where each part writes its JSON result. */
export const RESULTS_DIR = process.env.WEFT_BENCH_RESULTS ?? join(ROOT, ".weft/bench/results");

/** A figure that could not be measured; the part fails with this message. */
export class BenchError extends Error {}

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(values) {
  if (values.length === 0) throw new BenchError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The nearest-rank percentile `p` (0-100) of a list of numbers. */
export function percentile(values, p) {
  if (values.length === 0) throw new BenchError("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Writes a part's result as `<RESULTS_DIR>/<name>.json`. */
export function saveResult(name, data) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`bench: wrote ${path}`);
}

/**
 * Runs a part's main function: prints a `BenchError` (or any error) loudly and exits 1.
 *
 * @param {string} name the part's name, used in messages
 * @param {() => Promise<void>} main
 */
export function runPart(name, main) {
  const started = Date.now();
  main().then(
    () => {
      console.log(`bench: ${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      process.exit(0);
    },
    (error) => {
      const what = error instanceof BenchError ? error.message : (error?.stack ?? error);
      console.error(`\nbench: ${name} FAILED: ${what}\n`);
      process.exit(1);
    },
  );
}

/**
 * Runs wrk against `url` for `seconds` and returns what it measured.
 *
 * @param {object} options
 * @param {string} options.url the first request's URL (scripts may change path and body)
 * @param {number} options.seconds the run's duration
 * @param {string} [options.script] a Lua script in bench/wrk/ (default `plain.lua`)
 * @param {string[]} [options.args] arguments for the script (after `--`)
 * @param {number} [options.connections] 8 by default
 * @param {number} [options.threads] 2 by default
 * @param {number} [options.timeoutSeconds] wrk's per-request timeout (default 30)
 * @returns {Promise<{ requests: number, seconds: number, rps: number, p50Ms: number,
 *   p90Ms: number, p99Ms: number, maxMs: number, bytes: number }>}
 */
export async function wrk(options) {
  const {
    url,
    seconds,
    script = "plain.lua",
    args = [],
    connections = 8,
    threads = 2,
    timeoutSeconds = 30,
  } = options;
  const argv = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${seconds}s`,
    "--timeout",
    `${timeoutSeconds}s`,
    "-s",
    join(WRK_DIR, script),
    url,
    "--",
    ...args,
  ];
  const out = await run("wrk", argv, { env: { ...process.env, WEFT_WRK_DIR: WRK_DIR } });
  const line = out.split("\n").find((l) => l.startsWith("WEFT_WRK "));
  if (!line) throw new BenchError(`wrk printed no result for ${url}:\n${out}`);
  const raw = JSON.parse(line.slice("WEFT_WRK ".length));
  const errors = Object.entries(raw.errors).filter(([, n]) => n > 0);
  if (errors.length > 0) {
    const list = errors.map(([kind, n]) => `${n} ${kind}`).join(", ");
    const bad = raw.first_bad ? `; first: ${raw.first_bad.status} ${raw.first_bad.body}` : "";
    throw new BenchError(`wrk saw errors on ${url} (${script}): ${list}${bad}`);
  }
  if (raw.requests === 0) throw new BenchError(`wrk completed no request on ${url}`);
  const secs = raw.duration_us / 1e6;
  return {
    requests: raw.requests,
    seconds: secs,
    rps: raw.requests / secs,
    p50Ms: raw.p50_us / 1000,
    p90Ms: raw.p90_us / 1000,
    p99Ms: raw.p99_us / 1000,
    maxMs: raw.max_us / 1000,
    bytes: raw.bytes,
  };
}

/** Runs a command to completion and returns its stdout; fails with its output otherwise. */
export function run(command, argv, options = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(command, argv, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("error", (error) => fail(new BenchError(`${command} did not start: ${error}`)));
    child.on("exit", (code, signal) => {
      if (code === 0) ok(out);
      else {
        const how = `${command} ${argv.join(" ")} ended ${code ?? signal}`;
        fail(new BenchError(`${how}:\n${out}${err}`));
      }
    });
  });
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/**
 * The CPU seconds (user + system) spent so far by the Workers runtime of a worker started
 * with `tests/lib/worker.mjs`: every `workerd` process of its group (wrangler runs the
 * worker and its own entry proxy in separate runtimes; both serve each request).
 *
 * @param {{ pids: () => number[] }} worker
 */
export function runtimeCpuSeconds(worker) {
  let ticks = 0;
  let found = 0;
  for (const pid of worker.pids()) {
    let comm;
    let stat;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    if (comm !== "workerd") continue;
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
    found += 1;
  }
  if (found === 0) throw new BenchError("no workerd process in the worker's group");
  return ticks / CLK_TCK;
}

/**
 * Waits until the runtime has been idle for a moment (CPU rising by at most one tick in
 * 500 ms), so that work a request left behind (KV writes, alarms) is counted in its run.
 * Gives up after `limitMs` and says so.
 */
export async function settle(worker, limitMs = 30_000) {
  const deadline = Date.now() + limitMs;
  let last = runtimeCpuSeconds(worker);
  for (;;) {
    await sleep(500);
    const now = runtimeCpuSeconds(worker);
    if (now - last <= 1 / CLK_TCK + 1e-9) return;
    if (Date.now() > deadline) {
      throw new BenchError(`the runtime kept working ${limitMs} ms after the load stopped`);
    }
    last = now;
  }
}

/**
 * Measures a wrk run and the runtime CPU it cost, waiting for the runtime to settle
 * before and after: what `wrk()` returns, plus `cpuSeconds`.
 */
export async function wrkWithCpu(worker, options) {
  await settle(worker);
  const before = runtimeCpuSeconds(worker);
  const result = await wrk(options);
  await settle(worker);
  return { ...result, cpuSeconds: runtimeCpuSeconds(worker) - before };
}

/**
 * Starts an HTTP server on 127.0.0.1 (a free port) with `handler(req, res)`.
 *
 * @returns {Promise<{ url: string, port: number, close: () => Promise<void> }>}
 */
export async function startLoopbackServer(handler) {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(error));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

/** Reads a request's body as text. */
export async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** Rounds to `digits` significant decimals for the JSON results. */
export function round(value, digits = 3) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Copies the built weft worker (`crates/edge/build/`) and its static assets to a folder of
 * their own and writes a wrangler configuration running that copy: `wrangler dev` restarts
 * the runtime when the worker's files or its assets change, and anyone building in the same
 * checkout would otherwise restart it mid-run. The configuration is the repository's
 * `wrangler.toml` with `main` and the assets folder pointing at the copies.
 *
 * @returns {{ config: string, remove: () => void }}
 */
export function snapshotWeftWorker() {
  const dir = mkdtempSync(join(tmpdir(), "weft-bench-worker-"));
  cpSync(join(ROOT, "crates/edge/build"), join(dir, "build"), {
    recursive: true,
    filter: (path) => !path.includes("/.tmp"),
  });
  const original = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  let main = false;
  const config = original
    .replace(/^main\s*=\s*"[^"]*"\s*$/m, () => {
      main = true;
      return `main = ${JSON.stringify(join(dir, "build/index.js"))}`;
    })
    .replace(/^directory\s*=\s*"([^"]*)"\s*$/m, (_, assets) => {
      cpSync(resolve(ROOT, assets), join(dir, "assets"), { recursive: true });
      return `directory = ${JSON.stringify(join(dir, "assets"))}`;
    });
  if (!main) {
    throw new BenchError("wrangler.toml has no `main = \"…\"` line to point at the copy");
  }
  const path = join(dir, "wrangler.toml");
  writeFileSync(path, config);
  return { config: path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

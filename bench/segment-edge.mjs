//! The peer at the edge: Segment's Edge SDK personalising a page from KV
//! (`bench/segment-edge/worker.js`) under the same local Workers runtime and wrk load as
//! weft's decide route, beside a bare KV-read route in that same worker.
//!
//! A node server on 127.0.0.1 plays the site (origin), Segment's CDN and its tracking API,
//! answering 200. The worker is started with `tests/lib/worker.mjs` and this folder's
//! `wrangler.toml` (wrangler bundles the SDK), its KV is seeded with a profile for every
//! user the load uses (user-0 … user-999, each in the `vip` audience), and the part checks
//! before measuring that the personalised route really serves the variation. After the
//! runs it fails if the SDK tried to reach any host but loopback (the worker refuses and
//! records such fetches) or the origin was never asked for the page.
//!
//! The ratio is personalised/bare requests per second, a median over rounds whose order
//! is rotated, each route run for the same time.

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { startWorker } from "../tests/lib/worker.mjs";
import {
  BenchError,
  median,
  readBody,
  ROOT,
  round,
  runPart,
  saveResult,
  startLoopbackServer,
  wrk,
} from "./lib.mjs";

const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.WEFT_BENCH_ROUNDS ?? 5);
const USERS = 1000;
const PAGE = (title) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
  `<body><h1>${title}</h1><p>${"A page of the site. ".repeat(40)}</p></body></html>`;

runPart("segment-edge", async () => {
  const seen = new Map();
  const origin = await startLoopbackServer(async (req, res) => {
    const path = new URL(req.url, "http://127.0.0.1").pathname;
    seen.set(path, (seen.get(path) ?? 0) + 1);
    if (req.method === "POST") {
      await readBody(req);
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"success":true}');
      return;
    }
    const title = path === "/vip" ? "Hello, VIP" : "Hello";
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(PAGE(title));
  });
  let worker;
  try {
    worker = await startWorker({
      config: join(ROOT, "bench/segment-edge/wrangler.toml"),
      vars: { ORIGIN_URL: origin.url },
      logLevel: "error",
    });
    await seed(worker);
    const routes = { personalised: `${worker.url}/`, bare: `${worker.url}/__bench/bare` };
    await check(worker);

    const args = [String(USERS)];
    const load = (url, seconds) => wrk({ url, seconds, script: "users.lua", args });
    for (const url of Object.values(routes)) await load(url, 2);
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? ["bare", "personalised"] : ["personalised", "bare"];
      const measured = {};
      for (const name of order) {
        measured[name] = await load(routes[name], SECONDS);
      }
      rounds.push(measured);
      console.log(
        `segment-edge: round ${r + 1}: personalised ${measured.personalised.rps.toFixed(0)}/s, ` +
          `bare ${measured.bare.rps.toFixed(0)}/s`,
      );
    }

    const escapes = (await (await fetch(`${worker.url}/__bench/escapes`)).json()).escapes;
    if (escapes.length > 0) {
      throw new BenchError(`the Edge SDK tried to leave loopback: ${escapes.join(", ")}`);
    }
    if (!seen.get("/vip")) throw new BenchError("the origin never served /vip");

    const pick = (name, key) => median(rounds.map((x) => x[name][key]));
    const summary = (name) => ({
      rps: round(pick(name, "rps"), 1),
      p50Ms: round(pick(name, "p50Ms")),
      p99Ms: round(pick(name, "p99Ms")),
    });
    saveResult("segment-edge", {
      package: "@segment/edge-sdk",
      version: packageVersion("@segment/edge-sdk"),
      users: USERS,
      runSeconds: SECONDS,
      rounds: rounds.length,
      personalised: summary("personalised"),
      bare: summary("bare"),
      ratioPersonalisedOverBare: round(
        median(rounds.map((x) => x.personalised.rps / x.bare.rps)),
      ),
      ratios: rounds.map((x) => round(x.personalised.rps / x.bare.rps)),
      originRequests: Object.fromEntries(seen),
    });
  } finally {
    await worker?.stop();
    await origin.close();
  }
});

function packageVersion(name) {
  const path = join(ROOT, "node_modules", name, "package.json");
  return JSON.parse(readFileSync(path, "utf8")).version;
}

/** Gives every user the load uses a profile in the `vip` audience. */
async function seed(worker) {
  for (let start = 0; start < USERS; start += 100) {
    const profiles = {};
    for (let i = start; i < Math.min(USERS, start + 100); i++) {
      profiles[`user-${i}`] = { vip: true, newsletter_subscribers: i % 2 === 0 };
    }
    const res = await fetch(`${worker.url}/__bench/seed`, {
      method: "POST",
      body: JSON.stringify(profiles),
    });
    const text = await res.text();
    if (res.status !== 200) throw new BenchError(`seeding the peer's KV: ${res.status} ${text}`);
  }
}

/** The personalised route serves the variation to a seeded user, the bare route the doc. */
async function check(worker) {
  const headers = { cookie: "ajs_user_id=user-7" };
  const page = await fetch(`${worker.url}/`, { headers });
  const html = await page.text();
  if (page.status !== 200 || !html.includes("Hello, VIP")) {
    const start = html.slice(0, 300);
    throw new BenchError(`the Edge SDK did not personalise /: ${page.status} ${start}`);
  }
  if (!html.includes("analytics")) {
    throw new BenchError("the Edge SDK did not inject its snippet into the page");
  }
  const bare = await fetch(`${worker.url}/__bench/bare`, { headers });
  const doc = await bare.text();
  if (bare.status !== 200 || !doc.includes('"vip":true')) {
    throw new BenchError(`the bare route did not read the seeded profile: ${bare.status} ${doc}`);
  }
}

//! SDK load in headless Chromium: how long after navigation a page's first event leaves,
//! and the longest main-thread task meanwhile, weft beside `@segment/analytics-next`.
//!
//! One node server on 127.0.0.1 serves both pages (the same HTML around each SDK's own
//! snippet), both SDKs' files (weft's from `www/`, Segment's standalone bundle, its lazy
//! chunks and a settings document from `node_modules/@segment/analytics-next`, as its CDN
//! would) and plays the collector for both, answering 200. Each run launches a fresh
//! Chromium (`tests/lib/browser.mjs`: empty cache, cookies and storage) whose resolver maps
//! every host but 127.0.0.1 to nowhere; a request off loopback fails the part.
//!
//! Per run: Chrome's trace (devtools.timeline) from before navigation until the first
//! event has reached the server plus 500 ms. "First event" is the start of the first
//! request to the collector (`/v1/…`), from the page's Resource Timing, in ms since
//! navigation start; "longest task" is the longest `RunTask` on a renderer main thread in
//! the trace, by wall time (what the Long Tasks API judges) and by the thread's own CPU time
//! (`tdur`; on a busy machine the wall time also counts moments the thread was not
//! scheduled). Variants: weft as the demo site embeds it (events batched for up to
//! `flushInterval`, 1 s by default), weft with `flushInterval: 0`, and Segment's snippet
//! as its docs give it (`@segment/snippet`), each run RUNS times in turn; medians.
//!
//! `WEFT_BENCH_LOAD_RUNS` changes the number of runs; `WEFT_BENCH_DEBUG=1` echoes the pages'
//! requests and console.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { CHROMIUM, launchBrowser, REGULAR_USER_AGENT } from "../tests/lib/browser.mjs";
import {
  BenchError,
  median,
  readBody,
  ROOT,
  round,
  runPart,
  saveResult,
  startLoopbackServer,
  WWW,
} from "./lib.mjs";

const RUNS = Number(process.env.WEFT_BENCH_LOAD_RUNS ?? 5);
const FIRST_EVENT_LIMIT_MS = 15_000;
const SEGMENT_KEY = "bench-write-key";
const SEGMENT_DIST = join(ROOT, "node_modules/@segment/analytics-next/dist/umd");
const TYPES = {
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
};

const VARIANTS = [
  { name: "weft", page: "/weft.html", sdk: "weft", options: "" },
  {
    name: "weft (flushInterval 0)",
    page: "/weft-now.html",
    sdk: "weft",
    options: "flushInterval: 0",
  },
  { name: "@segment/analytics-next", page: "/segment.html", sdk: "segment" },
];

runPart("load", async () => {
  const weftSnippet = readFileSync(join(WWW, "snippet.min.js"), "utf8").trim();
  for (const file of ["sdk/pkg/weft.js", "sdk/pkg/weft_sdk_bg.wasm"]) {
    readFileSync(join(WWW, file));
  }
  const require = createRequire(import.meta.url);
  const segmentSnippet = require("@segment/snippet");

  let waiting = null;
  const collected = [];
  const server = await startLoopbackServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const path = url.pathname;
    if (req.method === "POST" && path.startsWith("/v1/")) {
      const body = await readBody(req);
      collected.push({ path, bytes: body.length });
      waiting?.();
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true,"accepted":1,"rejected":[],"warnings":[]}');
      return;
    }
    const page = pages.get(path);
    if (page) return send(res, ".html", page);
    if (path.startsWith("/sdk/")) {
      return send(res, extname(path), readFileSync(join(WWW, path)));
    }
    if (path === `/seg/analytics.js/v1/${SEGMENT_KEY}/analytics.min.js`) {
      return send(res, ".js", readFileSync(join(SEGMENT_DIST, "standalone.js")));
    }
    if (path === `/seg/v1/projects/${SEGMENT_KEY}/settings`) {
      return send(res, ".json", JSON.stringify(segmentSettings(server.port)));
    }
    if (path.startsWith("/seg/analytics-next/bundles/")) {
      const file = path.slice("/seg/analytics-next/bundles/".length);
      if (/^[\w.-]+\.js$/.test(file)) {
        return send(res, ".js", readFileSync(join(SEGMENT_DIST, file)));
      }
    }
    if (path === "/favicon.ico") {
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end(`not found: ${path}`);
  });

  const pages = new Map();
  for (const variant of VARIANTS) {
    const head =
      variant.sdk === "weft"
        ? `${weftSnippet}\nweft.load("demo-write-key", {${variant.options}});\nweft.page();`
        : segmentSnippet
            .min({
              host: `127.0.0.1:${server.port}/seg`,
              apiKey: SEGMENT_KEY,
              ajsPath: `/analytics.js/v1/${SEGMENT_KEY}/analytics.min.js`,
              useHostForBundles: true,
              page: {},
            })
            .replaceAll("https://", "http://");
    pages.set(variant.page, html(head));
  }

  const nextEvent = () =>
    new Promise((ok, fail) => {
      const timer = setTimeout(
        () => fail(new BenchError(`no event within ${FIRST_EVENT_LIMIT_MS} ms`)),
        FIRST_EVENT_LIMIT_MS,
      );
      waiting = () => {
        clearTimeout(timer);
        waiting = null;
        ok();
      };
    });

  const results = Object.fromEntries(VARIANTS.map((v) => [v.name, []]));
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const variant of VARIANTS) {
        collected.length = 0;
        const measured = await measureRun(`${server.url}${variant.page}`, nextEvent).catch(
          (error) => {
            throw new BenchError(`${variant.name}, run ${run + 1}: ${error.message}`);
          },
        );
        results[variant.name].push({ ...measured, collectorPaths: collected.map((c) => c.path) });
        console.log(
          `load: ${variant.name} run ${run + 1}: first event ${measured.firstEventMs.toFixed(0)} ` +
            `ms, longest task ${measured.longestTaskMs.toFixed(1)} ms`,
        );
      }
    }
  } finally {
    await server.close();
  }

  saveResult("load", {
    runs: RUNS,
    chromium: chromiumVersion(),
    variants: VARIANTS.map((variant) => {
      const runs = results[variant.name];
      const pick = (key) => round(median(runs.map((r) => r[key])), 1);
      return {
        name: variant.name,
        firstEventMs: pick("firstEventMs"),
        longestTaskMs: pick("longestTaskMs"),
        longestTaskCpuMs: pick("longestTaskCpuMs"),
        tasksOver50Ms: pick("tasksOver50Ms"),
        firstEventRuns: runs.map((r) => round(r.firstEventMs, 1)),
        longestTaskRuns: runs.map((r) => round(r.longestTaskMs, 1)),
        firstCollectorPath: runs[0].collectorPaths[0],
      };
    }),
  });
});

function send(res, ext, body) {
  res.writeHead(200, { "content-type": TYPES[ext] ?? "application/octet-stream" });
  res.end(body);
}

function html(headScript) {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title>\n` +
    `<script>\n${headScript}\n</script>\n</head><body><h1>A page</h1>` +
    `<p>${"Some text of the page. ".repeat(50)}</p></body></html>`
  );
}

/** The settings Segment's CDN would serve, pointing delivery at the local collector. */
function segmentSettings(port) {
  const host = `127.0.0.1:${port}/v1`;
  return {
    integrations: {
      "Segment.io": {
        apiKey: SEGMENT_KEY,
        apiHost: host,
        protocol: "http",
        unbundledIntegrations: [],
        addBundledMetadata: true,
        maybeBundledConfigIds: {},
      },
    },
    plan: { track: { __default: { enabled: true, integrations: {} } } },
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    metrics: { sampleRate: 0, host, protocol: "http" },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  };
}

/** One page load in a fresh Chromium, traced. */
async function measureRun(url, nextEvent) {
  const browser = await launchBrowser({
    userAgent: REGULAR_USER_AGENT,
    hostRules: "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  });
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    // What the page complained about, to say why when no event comes.
    const complaints = [];
    page.on("console", (m) => {
      if (["error", "warning"].includes(m.type())) complaints.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => complaints.push(`uncaught: ${e.message}`));
    const offLoopback = [];
    browser.context.on("request", (request) => {
      const host = new URL(request.url()).hostname;
      if (!["127.0.0.1", ""].includes(host) && !request.url().startsWith("data:")) {
        offLoopback.push(request.url());
      }
    });
    if (process.env.WEFT_BENCH_DEBUG) {
      page.on("console", (m) => console.log(`load: console ${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => console.log(`load: page error: ${e}`));
      browser.context.on("request", (r) => console.log(`load: request ${r.method()} ${r.url()}`));
      browser.context.on("requestfailed", (r) => console.log(`load: failed ${r.url()}`));
    }
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send("Tracing.start", {
      transferMode: "ReturnAsStream",
      traceConfig: {
        includedCategories: [
          "devtools.timeline",
          "disabled-by-default-devtools.timeline",
          "toplevel",
        ],
      },
    });

    const event = nextEvent();
    await page.goto(url, { waitUntil: "load" });
    await event.catch((error) => {
      const said = complaints.length ? `; the page said: ${complaints.join(" | ")}` : "";
      throw new BenchError(`${error.message}${said}`);
    });
    await sleep(500);

    const firstEventMs = await page.evaluate(() => {
      const starts = performance
        .getEntriesByType("resource")
        .filter((e) => new URL(e.name).pathname.startsWith("/v1/"))
        .map((e) => e.startTime);
      return starts.length ? Math.min(...starts) : null;
    });
    const trace = await stopTracing(cdp);
    if (offLoopback.length > 0) {
      throw new BenchError(`the page tried to leave loopback: ${offLoopback.join(", ")}`);
    }
    if (firstEventMs === null) throw new BenchError("no collector request in Resource Timing");
    const tasks = mainThreadTasks(trace);
    if (tasks.length === 0) throw new BenchError("no main-thread task in the trace");
    return {
      firstEventMs,
      longestTaskMs: Math.max(...tasks.map((t) => t.wallMs)),
      longestTaskCpuMs: Math.max(...tasks.map((t) => t.cpuMs)),
      tasksOver50Ms: tasks.filter((t) => t.wallMs > 50).length,
    };
  } finally {
    await browser.close();
  }
}

/** Ends tracing and reads the trace's events from the stream Chromium hands back. */
async function stopTracing(cdp) {
  const complete = new Promise((ok) => cdp.once("Tracing.tracingComplete", ok));
  await cdp.send("Tracing.end");
  const { stream } = await complete;
  let text = "";
  for (;;) {
    const chunk = await cdp.send("IO.read", { handle: stream, size: 1 << 20 });
    text += chunk.base64Encoded ? Buffer.from(chunk.data, "base64").toString("utf8") : chunk.data;
    if (chunk.eof) break;
  }
  await cdp.send("IO.close", { handle: stream });
  const parsed = JSON.parse(text);
  return Array.isArray(parsed) ? parsed : parsed.traceEvents;
}

/** Wall and thread-CPU durations (ms) of the top-level tasks on renderer main threads. */
function mainThreadTasks(events) {
  const mainThreads = new Set(
    events
      .filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain")
      .map((e) => `${e.pid}:${e.tid}`),
  );
  return events
    .filter(
      (e) =>
        e.ph === "X" &&
        (e.name === "RunTask" || e.name === "ThreadControllerImpl::RunTask") &&
        mainThreads.has(`${e.pid}:${e.tid}`),
    )
    .map((e) => ({ wallMs: (e.dur ?? 0) / 1000, cpuMs: (e.tdur ?? 0) / 1000 }));
}

function chromiumVersion() {
  const out = execFileSync(CHROMIUM, ["--version"], { stdio: ["ignore", "pipe", "ignore"] });
  return out.toString().trim();
}

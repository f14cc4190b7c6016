//! The one table of `make bench`: reads the parts' results (`.weft/bench/results/*.json`),
//! prints the table with the date and the machine, and writes it to `BENCHMARKS.md`.
//!
//! A part that failed leaves `<part>.failed` (its reason) instead of `<part>.json`; then
//! every figure of that part reads NOT MEASURED, the table goes to
//! `.weft/bench/BENCHMARKS.partial.md` instead, the reasons are printed, and the exit status
//! is 1: `BENCHMARKS.md` only ever holds a complete run.
//!
//! scripts/bench.sh also leaves `run.json` there: when the run started and finished (epoch
//! seconds) and the load average at both ends, so the table can be rendered again from the
//! same results (`node bench/table.mjs`) and still say when and how the figures were taken.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { RESULTS_DIR, ROOT } from "./lib.mjs";

/** The parts, in the order bench.sh runs them. */
export const PARTS = ["sizes", "native", "load", "edge", "segment-edge"];

const NOT_MEASURED = "NOT MEASURED";

const runFile = join(RESULTS_DIR, "run.json");
const runInfo = existsSync(runFile)
  ? JSON.parse(readFileSync(runFile, "utf8"))
  : { started: null, finished: null, loadBefore: "unknown", loadAfter: "unknown" };
const CORES = Number(execFileSync("nproc").toString().trim());

const results = {};
const failures = {};
for (const part of PARTS) {
  const json = join(RESULTS_DIR, `${part}.json`);
  const failed = join(RESULTS_DIR, `${part}.failed`);
  if (existsSync(json)) results[part] = JSON.parse(readFileSync(json, "utf8"));
  else if (existsSync(failed)) failures[part] = readFileSync(failed, "utf8").trim();
  else failures[part] = "did not run";
}

const rows = [
  ...sizeRows(results.sizes),
  ...loadRows(results.load),
  ...nativeRows(results.native),
  ...edgeRows(results.edge, results["segment-edge"]),
];
const complete = Object.keys(failures).length === 0;
const text = render(rows, complete);
console.log(`\n${text}`);

if (complete) {
  writeFileSync(join(ROOT, "BENCHMARKS.md"), text);
  console.log("bench: wrote BENCHMARKS.md");
} else {
  const partial = join(ROOT, ".weft/bench/BENCHMARKS.partial.md");
  mkdirSync(join(ROOT, ".weft/bench"), { recursive: true });
  writeFileSync(partial, text);
  console.error("\nbench: FAILED: these parts could not be measured:");
  for (const [part, reason] of Object.entries(failures)) console.error(`- ${part}: ${reason}`);
  console.error(`bench: BENCHMARKS.md left as it was; this run's table is in ${partial}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------

/** A row: area, measure, weft, peer, weft ÷ peer, target, whether weft meets it. */
function row(area, measure, weft, peer = "", ratio = "", target = "", met = "") {
  return { area, measure, weft, peer, ratio, target, met };
}

function missing(area, measure, part) {
  return row(area, measure, NOT_MEASURED, NOT_MEASURED, "", "", `${part} failed`);
}

function bytes(n) {
  return `${n.toLocaleString("en-US")} B`;
}

function num(n, digits = 0) {
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

function ratio(a, b, digits = 2) {
  return `${(a / b).toFixed(digits)}×`;
}

function yes(condition) {
  return condition ? "yes" : "**no**";
}

function sizeRows(sizes) {
  const area = "SDK size";
  if (!sizes) return [missing(area, "gzip -9, what a page loads", "sizes")];
  const { files, total } = sizes.weft;
  const best = (x) => Math.min(x.gzip, x.gzipMinified);
  const weftBest = Math.min(total.gzip, total.gzipMinified);
  const parts = files.map((f) => `${f.file.split("/").pop()} ${num(f.gzip)}`).join(" + ");
  const smallest = sizes.peers.find((p) => p.name === sizes.smallestPeer);
  const rows = [
    row(
      area,
      "gzip -9, what a page loads (snippet + loader and glue + wasm)",
      `${bytes(total.gzip)} (${parts})`,
      `smallest peer: ${smallest.name} ${bytes(best(smallest))}`,
      ratio(weftBest, best(smallest)),
      "< 15,000 B and below every peer",
      yes(weftBest < 15_000 && sizes.peers.every((p) => weftBest < best(p))),
    ),
  ];
  for (const peer of sizes.peers) {
    const minified =
      peer.gzipMinified < peer.gzip ? ` (${bytes(peer.gzipMinified)} after esbuild --minify)` : "";
    rows.push(
      row(
        area,
        `peer bundle, gzip -9: ${peer.note}`,
        "",
        `${peer.name} ${peer.version} \`${peer.file.replace("node_modules/", "")}\`: ` +
          `${bytes(peer.gzip)}${minified}`,
        ratio(weftBest, best(peer)),
      ),
    );
  }
  return rows;
}

function loadRows(load) {
  const area = "SDK load (headless Chromium)";
  if (!load) return [missing(area, "first event after navigation; longest task", "load")];
  const byName = Object.fromEntries(load.variants.map((v) => [v.name, v]));
  const weft = byName.weft;
  const now = byName["weft (flushInterval 0)"];
  const peer = byName["@segment/analytics-next"];
  const ms = (v) => `${num(v, 0)} ms`;
  return [
    row(
      area,
      `navigation → first event sent, median of ${load.runs} (weft as the demo embeds it)`,
      ms(weft.firstEventMs),
      `@segment/analytics-next ${ms(peer.firstEventMs)}`,
      ratio(weft.firstEventMs, peer.firstEventMs),
    ),
    row(
      area,
      "navigation → first event sent, weft with `flushInterval: 0`",
      ms(now.firstEventMs),
      `@segment/analytics-next ${ms(peer.firstEventMs)}`,
      ratio(now.firstEventMs, peer.firstEventMs),
    ),
    row(
      area,
      `longest main-thread task until then, median of ${load.runs}: wall (thread CPU)`,
      `${num(weft.longestTaskMs, 1)} ms (${num(weft.longestTaskCpuMs, 1)} ms)`,
      `@segment/analytics-next ${num(peer.longestTaskMs, 1)} ms ` +
        `(${num(peer.longestTaskCpuMs, 1)} ms)`,
      ratio(weft.longestTaskMs, peer.longestTaskMs),
      "≤ 50 ms",
      `wall ${yes(weft.longestTaskMs <= 50)}, CPU ${yes(weft.longestTaskCpuMs <= 50)}`,
    ),
  ];
}

function nativeRows(native) {
  const area = "Identity and segments (native, one core)";
  if (!native) return [missing(area, "criterion benches of weft-core", "native")];
  const { identity, segments } = native;
  const withDedupe = identity.bytesPerIdentifierWithDedupe;
  return [
    row(
      area,
      `identity: events resolved per second (${num(identity.events)} events, 200k visitors)`,
      num(identity.eventsPerSecond),
      "",
      "",
      "≥ 1,000,000",
      yes(identity.eventsPerSecond >= 1_000_000),
    ),
    row(
      area,
      "identity: bytes of memory per identifier" +
        (withDedupe ? " (with the dedupe set of message ids)" : ""),
      `${num(identity.bytesPerIdentifier, 1)}${withDedupe ? ` (${num(withDedupe, 1)})` : ""}`,
      "",
      "",
      "≤ 96",
      yes(identity.bytesPerIdentifier <= 96),
    ),
    row(
      area,
      "segments: evaluate 50 rules, profile of 20 traits and 10 windowed counters",
      `${num(segments.evaluate50RulesUs, 2)} µs`,
      "",
      "",
      "< 2 µs",
      yes(segments.evaluate50RulesUs < 2),
    ),
    row(
      area,
      "decide path's own work (decode the doc, write the answer)",
      `${num(segments.decidePathUs, 2)} µs`,
      "",
      "",
      "< 20 µs",
      yes(segments.decidePathUs < 20),
    ),
  ];
}

function edgeRows(edge, peer) {
  const area = "Edge (local Workers runtime, wrk, 8 connections)";
  const rows = [];
  const rps = (x) => `${num(x.rps, 0)} req/s (p50 ${num(x.p50Ms, 1)} / p99 ${num(x.p99Ms, 1)} ms)`;
  if (edge) {
    rows.push(
      row(
        area,
        "`GET /v1/decide` beside a bare route reading one KV key",
        `decide ${rps(edge.decide)}`,
        `bare ${rps(edge.bare)}`,
        `${edge.ratioDecideOverBare.toFixed(2)}× of bare`,
        "≥ 0.90× of bare",
        yes(edge.ratioDecideOverBare >= 0.9),
      ),
    );
  } else {
    rows.push(missing(area, "`GET /v1/decide` beside a bare KV route", "edge"));
  }
  if (peer) {
    rows.push(
      row(
        area,
        `Segment Edge SDK ${peer.version}: personalised page beside a bare KV route in its ` +
          `worker (${num(peer.users)} seeded users)`,
        "",
        `personalised ${rps(peer.personalised)}; bare ${rps(peer.bare)}`,
        `${peer.ratioPersonalisedOverBare.toFixed(2)}× of bare`,
        "by hand before: 0.60×",
      ),
    );
    if (edge) {
      rows.push(
        row(
          area,
          "share of a bare KV read's req/s kept: weft decide vs Segment personalisation",
          `${edge.ratioDecideOverBare.toFixed(2)}×`,
          `${peer.ratioPersonalisedOverBare.toFixed(2)}×`,
          ratio(edge.ratioDecideOverBare, peer.ratioPersonalisedOverBare),
        ),
      );
    }
  } else {
    rows.push(missing(area, "Segment Edge SDK personalised page vs bare KV route", "segment-edge"));
  }
  if (!edge) return rows;
  const b = edge.batches;
  rows.push(
    row(
      area,
      "`POST /v1/batch`, 100 events a request, unique messageIds",
      `${num(b.rps, 1)} req/s = ${num(b.eventsPerSecond)} events/s (p50 ${num(b.p50Ms, 0)} / ` +
        `p99 ${num(b.p99Ms, 0)} ms)`,
    ),
    row(
      area,
      `runtime CPU per 100-event batch, minus no-op (${num(b.totalBatches)} batches, ` +
        `median of ${b.runs} runs)`,
      `${num(b.cpuMsPerBatch, 2)} ms`,
      "",
      "",
      "< 5 ms",
      yes(b.cpuMsPerBatch < 5),
    ),
    row(
      area,
      "of which the runtime's floor: the same body to the Durable Object and back, unread",
      b.hopCpuMs === undefined ? "not measured" : `${num(b.hopCpuMs, 2)} ms`,
    ),
    row(
      area,
      "runtime CPU per request, minus no-op: decide (bare KV route)",
      `${num(edge.decideCpuMsOverNoop, 3)} ms (${num(edge.bareCpuMsOverNoop, 3)} ms); no-op ` +
        `${num(edge.noopCpuMs, 3)} ms`,
    ),
    row(
      area,
      `freshness: event acknowledged → \`/v1/decide\` reflects it, ${edge.freshness.trials} ` +
        "trials",
      `p95 ${fmtMs(edge.freshness.p95Ms)} (p50 ${fmtMs(edge.freshness.p50Ms)}, max ` +
        `${fmtMs(edge.freshness.maxMs)}, missed ${edge.freshness.missed})`,
      "",
      "",
      "p95 ≤ 1,000 ms",
      yes(typeof edge.freshness.p95Ms === "number" && edge.freshness.p95Ms <= 1000),
    ),
  );
  return rows;
}

function fmtMs(value) {
  return typeof value === "number" ? `${num(value, 0)} ms` : `${value} ms`;
}

function render(rows, complete) {
  const header = ["Area", "Measure", "weft", "Peer", "weft ÷ peer", "Target", "Met"];
  const escape = (cell) => String(cell).replaceAll("|", "\\|");
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => {
      const cells = [r.area, r.measure, r.weft, r.peer, r.ratio, r.target, r.met];
      return `| ${cells.map(escape).join(" | ")} |`;
    }),
  ];
  const status = complete
    ? ""
    : `\n**Incomplete run**: ${Object.entries(failures)
        .map(([part, reason]) => `${part}: ${reason}`)
        .join("; ")}\n`;
  return `# weft benchmarks

Written by \`make bench\` (scripts/bench.sh), run started ${started()}.

Machine: ${machine()}.
${busy()}${status}
${lines.join("\n")}

How each figure was measured (details in the \`//!\` header of each \`bench/*.mjs\`):
- Sizes: \`gzip -9\` of each file; peers' bundles from their npm packages in node_modules, also
  after \`esbuild --minify\` where that is smaller (the comparison takes each side's smaller
  figure). Peers' snippets and on-demand chunks are not counted; weft's snippet is.
- SDK load: fresh headless Chromium per run, one local page and collector on 127.0.0.1,
  every other host unresolvable; first event = start of the first \`/v1/…\` request in
  Resource Timing; longest task = longest \`RunTask\` on the renderer main thread in Chrome's
  trace until the first event plus 500 ms.
- Native: criterion medians (\`cargo bench -p weft-core --bench identity|segments\`); memory
  from the identity bench's counting allocator.
- Edge: \`wrangler dev\` on 127.0.0.1 with its storage on tmpfs; wrk 2 threads, 8
  connections, runs of a few seconds in rotated order, medians of the runs and of the
  per-round ratios. CPU = the workerd processes' CPU seconds from /proc over a run divided
  by its requests, minus the no-op route's in the same worker; it includes the local
  runtime's own simulation of KV, Durable Object storage and R2 (a bare KV read costs
  what the table shows over the no-op), which Cloudflare does not bill as worker CPU.
- The Segment Edge SDK's worker (\`bench/segment-edge/\`) had its Profiles API off, its KV
  seeded for every user of the load, its CDN, tracking API and origin on a local node
  server, and every fetch off loopback refused; none was attempted.
- Local figures measure this machine as much as weft: wrk, node and workerd share its
  cores. Compare ratios within a run rather than absolute figures across machines.
`;
}

function started() {
  return runInfo.started ? new Date(runInfo.started * 1000).toISOString() : "at an unknown time";
}

/** A warning when other work shared the machine: wall-clock figures then run long. */
function busy() {
  const before = Number(String(runInfo.loadBefore).split(" ")[0]);
  const after = Number(String(runInfo.loadAfter).split(" ")[0]);
  if (!(Math.max(before, after) > CORES / 2)) return "";
  return (
    `\n**The machine was busy** (load average ${runInfo.loadBefore} at the start, ` +
    `${runInfo.loadAfter} at the end, on ${CORES} cores): latencies, requests per second and ` +
    "wall-clock task lengths run long; ratios measured in the same run, CPU figures and " +
    "sizes hold up better.\n"
  );
}

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const memKb = Number(/^MemTotal:\s*(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]);
  const { started: from, finished: to, loadBefore, loadAfter } = runInfo;
  const took = from && to ? `; the run took ${Math.round((to - from) / 60)} min` : "";
  const version = (pkg) =>
    JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  let rustc = "rustc ?";
  try {
    rustc = execFileSync("rustc", ["--version"]).toString().trim();
  } catch {
    // The table still says which figures it has; a missing rustc shows as "rustc ?".
  }
  const chromium = results.load?.chromium ?? "Chromium ?";
  return (
    `${CORES} cores (nproc), ${model}, ${(memKb / 1024 / 1024).toFixed(1)} GiB memory; ` +
    `load average ${loadBefore} at the start, ${loadAfter} at the end${took}. ` +
    `${rustc}; node ${process.version}; wrangler ${version("wrangler")} (workerd ` +
    `${version("workerd")}); ${chromium}`
  );
}

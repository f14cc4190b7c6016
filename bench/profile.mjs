//! Where the runtime's CPU goes while it takes 100-event batches: starts weft's worker,
//! samples it with the V8 profiler through wrangler's inspector (loopback only), runs the
//! bench's batch load with wrk, and prints the functions with the most self time.
//!
//! `node bench/profile.mjs [seconds]` (default 10) after `make build-worker`. Function
//! names come from the wasm's name section when the build keeps one; otherwise wasm
//! functions show as `wasm-function[N]`.

import WebSocket from "ws";

import { DEMO_WRITE_KEY, startWorker } from "../tests/lib/worker.mjs";
import { readFileSync } from "node:fs";

import { wrk } from "./lib.mjs";

/** CPU ticks by process of the worker's group, with each process's command line. */
function ticksByProcess(worker) {
  const out = new Map();
  for (const pid of worker.pids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").slice(0, 90);
      out.set(pid, { cmd, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone
    }
  }
  return out;
}

const seconds = Number(process.argv[2] ?? 10);
const worker = await startWorker({ vars: { WEFT_BENCH: "1", WEFT_RATE_LIMIT: "off" }, logLevel: "error" });
try {
  const targets = await (await fetch(`http://127.0.0.1:${worker.inspectorPort}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { origin: "https://devtools.devprod.cloudflare.dev" });
  await new Promise((ok, fail) => {
    ws.onopen = ok;
    ws.onerror = fail;
  });
  let next = 0;
  const waiting = new Map();
  ws.onmessage = (msg) => {
    const data = JSON.parse(msg.data);
    if (data.id !== undefined && waiting.has(data.id)) {
      waiting.get(data.id)(data);
      waiting.delete(data.id);
    }
  };
  const send = (method, params = {}) =>
    new Promise((ok) => {
      const id = ++next;
      waiting.set(id, ok);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const url = `${worker.url}/v1/batch`;
  await wrk({ url, seconds: 2, script: "batch.lua", args: ["warm", DEMO_WRITE_KEY] });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 200 });
  const before = ticksByProcess(worker);
  await send("Profiler.start");
  const run = await wrk({ url, seconds, script: "batch.lua", args: ["prof", DEMO_WRITE_KEY] });
  const { result } = await send("Profiler.stop");
  const after = ticksByProcess(worker);
  let busiest = 0;
  for (const [pid, { cmd, ticks }] of after) {
    const used = ticks - (before.get(pid)?.ticks ?? 0);
    busiest = Math.max(busiest, used);
    if (used > 0) console.log(`cpu: ${pid} ${used} ticks: ${cmd}`);
  }
  ws.close();
  const nodes = result.profile.nodes;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  // Samples come at a steady rate while the isolate's thread runs, so their shares are
  // shares of its CPU; the runtime process's CPU per request scales them to ms.
  const counts = new Map();
  for (const id of result.profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const parent = new Map();
  for (const node of nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map();
  for (const [id, n] of counts) {
    const names = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      names.add(byId.get(at).callFrame.functionName || "(anonymous)");
    }
    for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + n);
  }
  let total = 0;
  for (const [id, n] of counts) {
    const node = byId.get(id);
    const name = node.callFrame.functionName || `(${node.callFrame.url || "anonymous"})`;
    self.set(name, (self.get(name) ?? 0) + n);
    total += n;
  }
  const idle = (self.get("(idle)") ?? 0) + (self.get("(program)") ?? 0);
  const requests = run.requests;
  // Ticks are hundredths of a second.
  const msPerRequest = (busiest * 10) / requests;
  console.log(
    `profile: ${total} samples, ${idle} idle/program; ${requests} requests; the busiest ` +
      `runtime process used ${msPerRequest.toFixed(2)} ms of CPU per request`,
  );
  const show = (title, map, limit) => {
    console.log(title);
    for (const [name, n] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      const ms = ((n / total) * msPerRequest).toFixed(3);
      console.log(`${((100 * n) / total).toFixed(1).padStart(5)}% ${ms.padStart(7)} ms  ${name.slice(0, 120)}`);
    }
  };
  show("self:", self, 45);
  show("inclusive:", inclusive, 70);
} finally {
  await worker.stop();
}

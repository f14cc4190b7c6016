//! Identity and segments natively: runs the criterion benches of weft-core
//! (`crates/core/benches/identity.rs`, `crates/core/benches/segments.rs`) and pulls their
//! figures out.
//!
//! Times come from criterion's own records (`criterion/**/new/estimates.json`,
//! the median of its samples) written during this run; the identity bench's memory per
//! identifier comes from the line it prints (`… = <n> bytes/identifier`). The figures the
//! issues ask for: events resolved per second on one core (1,000,000 events from 200,000
//! visitors), bytes per identifier, evaluating the 50-rule mix against one profile, and
//! the decide path's own work. Any other bench in those files is listed too.
//!
//! The segment bench runs with `--warm-up-time 1 --measurement-time 3` (its functions take
//! microseconds, so that is millions of iterations). The identity bench runs with criterion's
//! `--quick`: one pass over the million events takes seconds, and its own settings (10
//! samples, at least 10 passes) would take minutes at today's speed; quick mode times 1, 2,
//! 4 … passes until two agree within 5% or its 20 s measurement time has passed.
//! Criterion's records go to `.weft/bench/criterion` (`CRITERION_HOME`), apart from the
//! records of anyone else's runs in the shared target folder.

import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { BenchError, ROOT, round, runPart, saveResult } from "./lib.mjs";

const CRITERION_HOME = join(ROOT, ".weft/bench/criterion");
const BENCHES = {
  identity: ["--quick"],
  segments: ["--warm-up-time", "1", "--measurement-time", "3"],
};

/** The figures the table needs: which bench, which criterion id (a pattern), and a name. */
const WANTED = [
  { key: "identityIngest", bench: "identity", id: /identity\/.*(ingest|events)/i },
  { key: "evaluate50Rules", bench: "segments", id: /evaluate.*50/i },
  { key: "decidePath", bench: "segments", id: /decide/i },
];

runPart("native", async () => {
  for (const name of Object.keys(BENCHES)) {
    if (!existsSync(join(ROOT, `crates/core/benches/${name}.rs`))) {
      throw new BenchError(`crates/core/benches/${name}.rs is missing: no ${name} figures`);
    }
  }
  const outputs = {};
  const records = {};
  for (const [name, args] of Object.entries(BENCHES)) {
    const started = Date.now() - 1_000;
    outputs[name] = await cargoBench(name, args);
    records[name] = criterionRecords(CRITERION_HOME, started);
    if (records[name].length === 0) {
      throw new BenchError(`cargo bench --bench ${name} left no criterion record`);
    }
  }

  const figures = {};
  for (const { key, bench, id } of WANTED) {
    const record = records[bench].find((r) => id.test(r.id));
    if (!record) {
      const ids = records[bench].map((r) => r.id).join(", ");
      throw new BenchError(`no criterion bench matching ${id} in ${bench} (found: ${ids})`);
    }
    figures[key] = record;
  }

  const ingest = figures.identityIngest;
  if (!ingest.elements) throw new BenchError(`${ingest.id} declares no element throughput`);
  const perId = [...outputs.identity.matchAll(/([\d.]+) bytes\/identifier/g)].map((m) =>
    Number(m[1]),
  );
  if (perId.length === 0) {
    throw new BenchError("the identity bench printed no `… bytes/identifier` figure");
  }

  saveResult("native", {
    identity: {
      bench: ingest.id,
      events: ingest.elements,
      medianSeconds: round(ingest.medianNs / 1e9, 4),
      eventsPerSecond: Math.round(ingest.elements / (ingest.medianNs / 1e9)),
      bytesPerIdentifier: perId[0],
      bytesPerIdentifierWithDedupe: perId[1] ?? null,
      printed: outputs.identity.split("\n").filter((l) => /^identity/.test(l)),
    },
    segments: {
      evaluate50RulesUs: round(figures.evaluate50Rules.medianNs / 1000, 4),
      evaluateBench: figures.evaluate50Rules.id,
      decidePathUs: round(figures.decidePath.medianNs / 1000, 4),
      decideBench: figures.decidePath.id,
    },
    // A record can be seen by both walks; the later one is the same file.
    all: [...new Map([...records.identity, ...records.segments].map((r) => [r.id, r])).values()]
      .map((r) => ({ id: r.id, medianUs: round(r.medianNs / 1000, 4) })),
  });
});

/** Runs one bench, echoing its output, and returns stdout and stderr together. */
function cargoBench(name, args) {
  return new Promise((ok, fail) => {
    const argv = ["bench", "-p", "weft-core", "--bench", name, "--", ...args];
    console.log(`native: cargo ${argv.join(" ")}`);
    const child = spawn("cargo", argv, {
      cwd: ROOT,
      env: { ...process.env, CRITERION_HOME },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    const keep = (stream) => (chunk) => {
      text += chunk;
      stream.write(chunk);
    };
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    child.on("error", (error) => fail(new BenchError(`cargo did not start: ${error}`)));
    child.on("exit", (code, signal) => {
      if (code === 0) ok(text);
      else fail(new BenchError(`cargo bench --bench ${name} ended ${code ?? signal}`));
    });
  });
}

/** Criterion's records written since `since` (ms): id, median ns, element throughput. */
function criterionRecords(dir, since) {
  if (!existsSync(dir)) return [];
  const found = [];
  const visit = (path) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (!entry.isDirectory()) continue;
      const estimates = join(child, "new/estimates.json");
      const benchmark = join(child, "new/benchmark.json");
      if (existsSync(estimates) && existsSync(benchmark) && statSync(estimates).mtimeMs >= since) {
        const meta = JSON.parse(readFileSync(benchmark, "utf8"));
        const est = JSON.parse(readFileSync(estimates, "utf8"));
        found.push({
          id: meta.full_id,
          medianNs: est.median.point_estimate,
          elements: meta.throughput?.Elements ?? null,
        });
      }
      visit(child);
    }
  };
  visit(dir);
  return found;
}

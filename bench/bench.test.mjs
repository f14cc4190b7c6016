//! Tests of `make bench`'s own pieces, the ones whose mistakes would not show in a table:
//! the statistics, the wrk scripts' request bodies (every messageId unique, 100 events a
//! batch), the user cookies of the peer's load, and the table refusing to write
//! BENCHMARKS.md from an incomplete run. Run with `node --test 'bench/*.test.mjs'`.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { median, percentile, readBody, ROOT, startLoopbackServer, wrk } from "./lib.mjs";

describe("statistics", () => {
  test("median takes the middle value, or the mean of the middle two", () => {
    const cases = [
      [[5], 5],
      [[3, 1, 2], 2],
      [[4, 1, 3, 2], 2.5],
      [[10, 10, 1, 1000, 10], 10],
    ];
    for (const [values, want] of cases) assert.equal(median(values), want, `${values}`);
  });

  test("percentile is nearest-rank and counts an infinite miss as the largest value", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    const cases = [
      [hundred, 50, 50],
      [hundred, 95, 95],
      [hundred, 100, 100],
      [[7], 95, 7],
      [[...hundred.slice(0, 99), Infinity], 99, 99],
      [[...hundred.slice(0, 94), ...Array(6).fill(Infinity)], 95, Infinity],
    ];
    for (const [values, p, want] of cases) assert.equal(percentile(values, p), want, `p${p}`);
  });
});

describe("wrk scripts", () => {
  test("batch.lua sends 100 events a request and never repeats a messageId", async (t) => {
    const bodies = [];
    const server = await startLoopbackServer(async (req, res) => {
      bodies.push({ path: req.url, type: req.headers["content-type"], body: await readBody(req) });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
    t.after(() => server.close());

    // Two runs with different tags, as edge.mjs runs them against one worker.
    const url = `${server.url}/v1/batch`;
    for (const tag of ["t1", "t2"]) {
      await wrk({ url, seconds: 1, script: "batch.lua", args: [tag, "k"] });
    }

    assert.ok(bodies.length >= 4, `only ${bodies.length} requests`);
    const ids = new Set();
    for (const { path, type, body } of bodies) {
      assert.equal(path, "/v1/batch");
      assert.equal(type, "text/plain");
      const parsed = JSON.parse(body);
      assert.equal(parsed.writeKey, "k");
      assert.equal(parsed.batch.length, 100);
      const types = new Set(parsed.batch.map((e) => e.type));
      assert.deepEqual([...types].sort(), ["identify", "page", "track"]);
      for (const event of parsed.batch) {
        assert.ok(!ids.has(event.messageId), `messageId ${event.messageId} sent twice`);
        ids.add(event.messageId);
      }
    }
  });

  test("users.lua sends a seeded user's cookie with every request", async (t) => {
    const users = new Set();
    const server = await startLoopbackServer((req, res) => {
      users.add(/ajs_user_id=([^;]+)/.exec(req.headers.cookie ?? "")?.[1] ?? "none");
      res.end("{}");
    });
    t.after(() => server.close());

    await wrk({ url: `${server.url}/`, seconds: 1, script: "users.lua", args: ["50"] });

    assert.ok(users.size > 10, `only ${users.size} distinct users`);
    for (const user of users) assert.match(user, /^user-(\d|[1-4]\d)$/);
  });

  test("a non-2xx answer fails the run and says what the server answered", async (t) => {
    const server = await startLoopbackServer((req, res) => {
      res.writeHead(429, { "content-type": "application/json" });
      res.end('{"error":"slow down"}');
    });
    t.after(() => server.close());

    const run = wrk({ url: `${server.url}/`, seconds: 1 });
    await assert.rejects(run, /status; first: 429.*slow down/);
  });
});

describe("table", () => {
  test("an incomplete run fails, names the part, and leaves BENCHMARKS.md alone", (t) => {
    const results = mkdtempSync(join(tmpdir(), "weft-bench-test-"));
    t.after(() => rmSync(results, { recursive: true, force: true }));
    writeFileSync(join(results, "edge.failed"), "the worker would not start\n");
    const benchmarks = join(ROOT, "BENCHMARKS.md");
    const before = existsSync(benchmarks) ? readFileSync(benchmarks, "utf8") : null;

    const run = spawnSync(process.execPath, [join(ROOT, "bench/table.mjs")], {
      env: { ...process.env, WEFT_BENCH_RESULTS: results },
      encoding: "utf8",
    });

    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /edge: the worker would not start/);
    assert.match(run.stdout, /NOT MEASURED/);
    const after = existsSync(benchmarks) ? readFileSync(benchmarks, "utf8") : null;
    assert.equal(after, before);
  });
});

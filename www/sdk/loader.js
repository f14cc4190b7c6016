// weft's loader: the public `weft` API over the wasm SDK, and the transport.
//
// The snippet (www/snippet.js) defines `weft` as a queue of calls and loads this file,
// bundled with wasm-bindgen's glue into www/sdk/pkg/weft.js by scripts/build-sdk.sh. The
// Rust side (crates/sdk) keeps the ids, works out each event's page, campaign and session,
// and holds the bounded outbox; this side does what JavaScript does best and smallest: the
// API's argument shapes, the event objects, traits, timers, page-exit listeners, fetch, and
// cross-tab locks. Only strings and numbers cross between the two.
//
// Delivery: batches leave when `flushAt` events wait, after `flushInterval` ms, and on
// `pagehide` or hidden visibility. Every request uses `fetch` with `keepalive`, within the
// browser's 64 KiB budget for such requests; at page exit what does not fit stays in the
// persisted outbox and leaves from the next page. Only one normal batch is in flight at a
// time; failures back off exponentially with jitter, 429 waits for `Retry-After`, other
// 4xx are not retried. Each tab sends only its own outbox; a tab's outbox left behind is
// adopted by another tab only while holding that tab's Web Lock, so no two tabs send one
// message id.
//
// Limitations: where Web Locks are missing (old browsers, pages not served over https or
// loopback), a left-behind outbox is adopted after a minute without heartbeat, and two
// tabs opening in the same second may both adopt it; the collector's deduplication
// catches that. A batch sent at page exit whose answer the page did not live to see is
// sent again from the next page, and deduplicated by the collector.

import init, * as sdk from "./pkg/weft_sdk.js";

const win = window;
const nav = navigator;
const script = document.currentScript;
const stub = win.weft || [];
const cfg = Object.assign({}, stub._cfg);
const endpoint = (cfg.host || "").replace(/\/$/, "") + "/v1/batch";
const flushAt = cfg.flushAt || 20;
const flushInterval = cfg.flushInterval == null ? 1000 : cfg.flushInterval;
// Chromium and Firefox allow 64 KiB of keepalive bodies in flight per document.
const KEEPALIVE_BUDGET = 65536;
const BATCH_BYTES = 32768;
const BATCH_EVENTS = 100;
const VERSION = "0.1.0";

let verbose = !!cfg.debug;
let booted = false;
let inFlight = 0;
let keepaliveBytes = 0;
let retryAt = 0;
let flushTimer = 0;
let saveQueued = false;
const readyCallbacks = [];

const log = (...args) => verbose && console.log("[weft]", ...args);
const randomId = () => Math.random().toString(36).slice(2) + Date.now().toString(36);
const stats = () => JSON.parse(sdk.stats());

// A version-4 UUID from crypto.getRandomValues (which, unlike randomUUID, also works on
// pages not served over https).
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1));
  return [h.slice(0, 4), h.slice(4, 6), h.slice(6, 8), h.slice(8, 10), h.slice(10)]
    .map((p) => p.join(""))
    .join("-");
}

// Storage that never throws into the page: null when unreadable, false when unwritable.
function stored(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key);
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
    return true;
  } catch (e) {
    return value === undefined ? null : false;
  }
}

let traits = {};
let consentState = "granted";

// Takes the Web Lock `name` for the page's lifetime; true when held, false when another
// document holds it, null when the browser has no Web Locks.
function holdLock(name) {
  return new Promise((resolve) => {
    try {
      nav.locks.request(name, { ifAvailable: true }, (lock) => {
        resolve(!!lock);
        return lock && new Promise(() => {});
      });
    } catch (e) {
      resolve(null);
    }
  });
}

const PAGE_FIELDS = ["url", "path", "search", "referrer", "title"];

function record(type, fields, o) {
  if (consentState === "denied") return;
  o = o || {};
  const context = Object.assign({}, o.context);
  const given = Object.assign({}, type === "page" ? fields.properties : null, context.page);
  const [anonymousId, userId] = sdk.ids().split("\n");
  const touch = sdk.touch(
    [location.href, document.referrer, document.title]
      .concat(PAGE_FIELDS.map((k) => (typeof given[k] === "string" ? given[k] : "\x01")))
      .join("\0"),
    !!context.campaign,
  );
  Object.assign(context, JSON.parse(touch), {
    library: { name: "weft-sdk", version: VERSION },
    userAgent: nav.userAgent,
    locale: nav.language,
  });
  const t = o.timestamp;
  const event = Object.assign({ type, messageId: uuid(), anonymousId }, fields, {
    userId: userId || undefined,
    timestamp: t instanceof Date ? t.toISOString() : t || new Date().toISOString(),
    context,
    integrations: o.integrations,
  });
  sdk.push(event.messageId, JSON.stringify(event));
  changed();
}

// Persists once per task, then sends or arms the flush timer.
function changed() {
  if (saveQueued) return;
  saveQueued = true;
  setTimeout(() => {
    saveQueued = false;
    sdk.persist();
    if (stats().waiting >= flushAt) flush();
    else if (!flushTimer) flushTimer = setTimeout(flush, flushInterval);
  }, 0);
}

function flush(exit) {
  clearTimeout(flushTimer);
  flushTimer = 0;
  // A collector that asked to wait (429, backoff) is not hammered at page exit either: the
  // outbox is persisted, and the next page sends it.
  if (Date.now() < retryAt || (!exit && inFlight)) return;
  for (;;) {
    const room = KEEPALIVE_BUDGET - keepaliveBytes;
    const max = exit ? room : Math.min(room, BATCH_BYTES);
    const batch = sdk.take(max, BATCH_EVENTS, new Date().toISOString());
    if (!batch) return;
    const head = batch.slice(0, batch.indexOf("\n")).split(" ");
    send(+head[0], batch.slice(head[0].length + head[1].length + 2), +head[1]);
    if (!exit) return;
  }
}

function retryAfterMs(header) {
  if (!header) return 0;
  const seconds = Number(header);
  const ms = seconds >= 0 ? seconds * 1000 : Date.parse(header) - Date.now();
  return ms > 0 ? ms : 0;
}

function send(batch, body, bytes) {
  inFlight++;
  keepaliveBytes += bytes;
  log("send", batch, bytes);
  const done = (status, after) => {
    inFlight--;
    keepaliveBytes -= bytes;
    const delay = sdk.settle(batch, status, after, Math.random());
    sdk.persist();
    log("sent", batch, status, delay);
    if (delay) {
      retryAt = Date.now() + delay;
      clearTimeout(flushTimer);
      flushTimer = setTimeout(flush, delay);
    } else {
      retryAt = 0;
      flush();
    }
  };
  fetch(endpoint, { method: "POST", body, keepalive: true, credentials: "same-origin" }).then(
    (r) => done(r.status, retryAfterMs(r.headers.get("Retry-After"))),
    () => done(0, 0),
  );
}

function exit() {
  sdk.persist();
  flush(true);
}

const api = {
  // Already loaded: a second snippet on the page finds `load` and leaves the API alone.
  load() {},
  page(...a) {
    const names = [];
    while (typeof a[0] === "string" && names.length < 2) names.push(a.shift());
    const name = names.pop();
    const category = names.pop();
    record("page", { name, category, properties: a[0] || {} }, a[1]);
  },
  track(event, properties, o) {
    record("track", { event, properties: properties || {} }, o);
  },
  identify(userId, t, o) {
    if (typeof userId === "object" && userId) [userId, t, o] = [undefined, userId, t];
    if (userId != null) sdk.setUserId(String(userId));
    traits = Object.assign(traits, t);
    if (consentState === "granted") stored("weft_traits", JSON.stringify(traits));
    record("identify", { traits: t || {} }, o);
  },
  group(groupId, t, o) {
    record("group", { groupId, traits: t || {} }, o);
  },
  alias(userId, previousId, o) {
    if (typeof previousId === "object") [previousId, o] = [undefined, previousId];
    const [anonymousId, current] = sdk.ids().split("\n");
    sdk.setUserId(String(userId));
    record("alias", { previousId: previousId || current || anonymousId }, o);
  },
  reset() {
    sdk.reset(uuid());
    traits = {};
    stored("weft_traits", null);
  },
  setAnonymousId(id) {
    sdk.setAnonymousId(String(id));
  },
  user() {
    const [anonymousId, userId] = sdk.ids().split("\n");
    return { anonymousId, userId: userId || null, traits: Object.assign({}, traits) };
  },
  ready(callback) {
    if (booted) callback(api);
    else readyCallbacks.push(callback);
  },
  debug(on) {
    verbose = on !== false;
  },
  consent(state) {
    consentState = state;
    sdk.setConsent(state);
    if (state === "denied") {
      traits = {};
      stored("weft_traits", null);
    }
    if (state === "granted") flush();
  },
  flush() {
    flush();
  },
  stats,
};

async function boot() {
  await init({ module_or_path: new URL("weft_sdk_bg.wasm", script.src) });

  // A tab keeps its id across its own navigations (sessionStorage), so the next page sends
  // what the last one left; a duplicated tab finds the lock taken and picks a new id.
  let tab;
  try {
    tab = sessionStorage.getItem("weft_tab");
  } catch (e) {}
  let locked = tab ? await holdLock("weft_tab:" + tab) : null;
  if (locked === false) {
    // The previous page of this tab may still be letting go of the lock.
    await new Promise((resolve) => setTimeout(resolve, 300));
    locked = await holdLock("weft_tab:" + tab);
  }
  if (!locked) {
    tab = randomId();
    locked = await holdLock("weft_tab:" + tab);
  }
  try {
    sessionStorage.setItem("weft_tab", tab);
  } catch (e) {}

  consentState = cfg.consent || "granted";
  if (cfg.gpc !== false && nav.globalPrivacyControl) consentState = "denied";
  const n = (v, d) => (v >= 0 ? v : d);
  sdk.boot(
    String(cfg.writeKey || ""),
    consentState,
    tab,
    uuid(),
    cfg.cookieDomain,
    n(cfg.maxEvents, 1000),
    n(cfg.maxBytes, 1000000),
    n(cfg.retryBase, 1000),
    n(cfg.retryMax, 60000),
    false,
  );
  try {
    traits = JSON.parse(stored("weft_traits")) || {};
  } catch (e) {}
  if (consentState === "denied") stored("weft_traits", null);

  // Outboxes of tabs that are gone: adopted now, and once more a little later for a tab
  // whose last page was still unloading.
  const hasLocks = locked !== null;
  const adoptOrphans = async () => {
    for (const other of sdk.orphans(hasLocks ? 0 : 60000).split("\n").filter(Boolean)) {
      if (!hasLocks || (await holdLock("weft_tab:" + other))) sdk.adopt(other);
    }
  };
  await adoptOrphans();
  setTimeout(() => adoptOrphans().then(() => flush()), 3000);
  if (!hasLocks) setInterval(() => sdk.persist(), 20000);

  win.weft = api;
  booted = true;
  for (const [method, ...args] of stub) {
    if (method !== "load" && api[method]) api[method](...args);
  }
  readyCallbacks.splice(0).forEach((callback) => callback(api));
  addEventListener("pagehide", exit);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") exit();
  });
  // What earlier pages left goes out now, not after the flush interval.
  sdk.persist();
  flush();
}

boot().catch((e) => console.warn("[weft] not started:", e));

// weft's loader: the public `weft` API over the wasm SDK, and the transport.
//
// The snippet (www/snippet.js) defines `weft` as a queue of calls and loads this file,
// bundled with wasm-bindgen's glue into www/sdk/pkg/weft.js by scripts/build-sdk.sh. The
// Rust side (crates/sdk) keeps the ids, builds the events and holds the bounded outbox;
// this side does what JavaScript does best and smallest: the API's argument shapes,
// timers, page-exit listeners, fetch, and cross-tab locks.
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

function options(o) {
  o = o || {};
  const t = o.timestamp;
  return {
    context: o.context,
    integrations: o.integrations,
    timestamp: t instanceof Date ? t.toISOString() : t,
  };
}

function record(kind, fields) {
  sdk.record(kind, fields);
  changed();
}

// Persists once per task, then sends or arms the flush timer.
function changed() {
  if (saveQueued) return;
  saveQueued = true;
  setTimeout(() => {
    saveQueued = false;
    sdk.persist();
    if (sdk.stats().waiting >= flushAt) flush();
    else if (!flushTimer) flushTimer = setTimeout(flush, flushInterval);
  }, 0);
}

function flush(exit) {
  clearTimeout(flushTimer);
  flushTimer = 0;
  if (!exit && (inFlight || Date.now() < retryAt)) return;
  for (;;) {
    const room = KEEPALIVE_BUDGET - keepaliveBytes;
    const batch = sdk.take(exit ? room : Math.min(room, BATCH_BYTES), BATCH_EVENTS);
    if (!batch) return;
    send(batch[0], batch[1], batch[2]);
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
    const delay = sdk.settle(batch, status, after);
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
  page(...a) {
    const names = [];
    while (typeof a[0] === "string" && names.length < 2) names.push(a.shift());
    const name = names.pop();
    const category = names.pop();
    record("page", Object.assign({ name, category, properties: a[0] || {} }, options(a[1])));
  },
  track(event, properties, o) {
    record("track", Object.assign({ event, properties: properties || {} }, options(o)));
  },
  identify(userId, traits, o) {
    if (typeof userId === "object" && userId) [userId, traits, o] = [undefined, userId, traits];
    record("identify", Object.assign({ userId, traits: traits || {} }, options(o)));
  },
  group(groupId, traits, o) {
    record("group", Object.assign({ groupId, traits: traits || {} }, options(o)));
  },
  alias(userId, previousId, o) {
    if (typeof previousId === "object") [previousId, o] = [undefined, previousId];
    record("alias", Object.assign({ userId, previousId }, options(o)));
  },
  reset() {
    sdk.reset();
  },
  setAnonymousId(id) {
    sdk.setAnonymousId(String(id));
  },
  user() {
    return sdk.user();
  },
  ready(callback) {
    if (booted) callback(api);
    else readyCallbacks.push(callback);
  },
  debug(on) {
    verbose = on !== false;
  },
  consent(state) {
    sdk.setConsent(state);
    if (state === "granted") flush();
  },
  flush() {
    flush();
  },
  stats() {
    return sdk.stats();
  },
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

  let consent = cfg.consent || "granted";
  if (cfg.gpc !== false && nav.globalPrivacyControl) consent = "denied";
  sdk.boot(Object.assign({}, cfg, { consent, tab }));

  // Outboxes of tabs that are gone: adopted now, and once more a little later for a tab
  // whose last page was still unloading.
  const hasLocks = locked !== null;
  const adoptOrphans = async () => {
    for (const other of sdk.orphans(hasLocks ? 0 : 60000)) {
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

// weft's loader: the public `weft` API over the wasm SDK, and the transport.
//
// The snippet (www/snippet.js) defines `weft` as a queue of calls and loads this file,
// bundled with wasm-bindgen's glue into www/sdk/pkg/weft.js by scripts/build-sdk.sh. The
// Rust side (crates/sdk) keeps the ids, works out each event's campaign and session, and
// holds the bounded outbox; this side does what JavaScript does best and smallest: the
// API's argument shapes, the event objects and their `context.page`, traits, timers,
// page-exit listeners, fetch, and cross-tab locks. The two talk through one function,
// `call(op, now, arg)`: an operation code (crates/sdk/src/sdk.rs, module `op`), the clock,
// and one string of NUL-separated fields; it answers one string.
//
// `context.page` is the live location and document, overridden by the event's own `url`,
// `path`, `search`, `referrer` and `title` (a page call's properties, then
// `options.context.page`); a new `url` without its own `search` or `path` carries the URL's
// (read with the browser's URL parser), so the campaign is read from the page the event
// names, not from the live location (field report `utm-from-explicit-page-search`).
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

import { call, initSync } from "./pkg/weft_sdk.js";

// Operation codes of `call`, as crates/sdk/src/sdk.rs numbers them.
const BOOT = 0;
const IDS = 1;
const SET_ANONYMOUS_ID = 2;
const SET_USER_ID = 3;
const RESET = 4;
const TOUCH = 5;
const PUSH = 6;
const CONSENT = 7;
const TAKE = 8;
const SETTLE = 9;
const PERSIST = 10;
const ADOPT = 11;
const STATS = 12;

const win = window;
const nav = navigator;
const doc = document;
const loc = location;
const script = doc.currentScript;
const stub = win.weft || [];
const cfg = Object.assign({}, stub._cfg);
const endpoint = (cfg.host || "").replace(/\/$/, "") + "/v1/batch";
const flushAt = cfg.flushAt || 20;
const flushInterval = cfg.flushInterval ?? 1000;
// Chromium and Firefox allow 64 KiB of keepalive bodies in flight per document.
const KEEPALIVE_BUDGET = 65536;
const BATCH_BYTES = 32768;
const BATCH_EVENTS = 100;
const VERSION = "0.1.0";
const TRAITS = "weft_traits";
const TAB_LOCK = "weft_tab:";
const QUEUE = "weft_q:";

let verbose = !!cfg.debug;
let booted = false;
let inFlight = 0;
let keepaliveBytes = 0;
let retryAt = 0;
let flushTimer = 0;
let saveQueued = false;
let traits = {};
let consentState = "granted";
const readyCallbacks = [];

const sdk = (op, ...fields) => call(op, Date.now(), fields.join("\0"));
const ids = () => sdk(IDS).split("\0");
const log = (...args) => verbose && console.log("[weft]", ...args);
const stats = () => JSON.parse(sdk(STATS));
const isText = (v) => typeof v == "string";

// A version-4 UUID from crypto.getRandomValues (which, unlike randomUUID, also works on
// pages not served over https).
const uuid = () =>
  "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16),
  );

// The traits kept in localStorage (as JSON text): read without an argument, written with
// one, removed with null. Never throws into the page; a read that throws answers nothing.
function storedTraits(value) {
  try {
    if (value === undefined) return localStorage[TRAITS];
    if (value === null) delete localStorage[TRAITS];
    else localStorage[TRAITS] = value;
  } catch (e) {}
}

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

function record(type, fields, o) {
  if (consentState == "denied") return;
  o = o || {};
  const context = Object.assign({}, o.context);
  const given = Object.assign({}, type == "page" && fields.properties, context.page);
  const page = {
    url: loc.href.split("#")[0],
    path: loc.pathname,
    search: loc.search,
    referrer: doc.referrer,
    title: doc.title,
  };
  for (const k in page) if (isText(given[k])) page[k] = given[k];
  if (isText(given.url)) {
    try {
      const url = new URL(given.url, loc.href);
      if (!isText(given.search)) page.search = url.search;
      if (!isText(given.path)) page.path = url.pathname;
    } catch (e) {}
  }
  const [anonymousId, userId] = ids();
  const touch = JSON.parse(sdk(TOUCH, page.url, page.search));
  // An explicit campaign wins over the one read from the page.
  if (context.campaign) delete touch.campaign;
  Object.assign(context, touch, {
    page,
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
  sdk(PUSH, event.messageId, JSON.stringify(event));
  changed();
}

// Persists once per task, then sends or arms the flush timer.
function changed() {
  if (saveQueued) return;
  saveQueued = true;
  setTimeout(() => {
    saveQueued = false;
    sdk(PERSIST);
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
    const [batch, bytes, body] = sdk(TAKE, max, BATCH_EVENTS, new Date().toISOString()).split(
      "\0",
    );
    if (!body) return;
    send(batch, body, +bytes);
    if (!exit) return;
  }
}

// Retry-After in ms: seconds or an HTTP date. A missing, past or unreadable one gives 0
// or a negative number or NaN, which the SDK reads as "none".
const retryAfterMs = (header) =>
  header ? (+header >= 0 ? header * 1000 : Date.parse(header) - Date.now()) : 0;

function send(batch, body, bytes) {
  inFlight++;
  keepaliveBytes += bytes;
  log("send", batch, bytes);
  const done = (status, after) => {
    inFlight--;
    keepaliveBytes -= bytes;
    const delay = +sdk(SETTLE, batch, status, after, (Math.random() * 1000) | 0);
    sdk(PERSIST);
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
  sdk(PERSIST);
  flush(true);
}

const api = {
  // Already loaded: a second snippet on the page finds `load` and leaves the API alone.
  load() {},
  page(...a) {
    const names = [];
    while (isText(a[0]) && names.length < 2) names.push(a.shift());
    const name = names.pop();
    const category = names.pop();
    record("page", { name, category, properties: a[0] || {} }, a[1]);
  },
  track(event, properties, o) {
    record("track", { event, properties: properties || {} }, o);
  },
  identify(userId, t, o) {
    if (typeof userId == "object" && userId) [userId, t, o] = [undefined, userId, t];
    if (userId != null) sdk(SET_USER_ID, userId);
    traits = Object.assign(traits, t);
    if (consentState == "granted") storedTraits(JSON.stringify(traits));
    record("identify", { traits: t || {} }, o);
  },
  group(groupId, t, o) {
    record("group", { groupId, traits: t || {} }, o);
  },
  alias(userId, previousId, o) {
    if (typeof previousId == "object") [previousId, o] = [undefined, previousId];
    const [anonymousId, current] = ids();
    sdk(SET_USER_ID, userId);
    record("alias", { previousId: previousId || current || anonymousId }, o);
  },
  reset() {
    sdk(RESET, uuid());
    traits = {};
    storedTraits(null);
  },
  setAnonymousId(id) {
    sdk(SET_ANONYMOUS_ID, id);
  },
  user() {
    const [anonymousId, userId] = ids();
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
    sdk(CONSENT, state);
    if (state == "denied") {
      traits = {};
      storedTraits(null);
    }
    if (state == "granted") flush();
  },
  flush() {
    flush();
  },
  stats,
};

async function boot() {
  // Compiled off the main thread, instantiated at once (the module is small). The glue's
  // own async loader is not used: it carries fallbacks for old browsers and wrong MIME
  // types that cost more than this line.
  const wasm = await fetch(new URL("weft_sdk_bg.wasm", script.src));
  initSync({ module: await WebAssembly.compile(await wasm.arrayBuffer()) });

  // A tab keeps its id across its own navigations (sessionStorage), so the next page sends
  // what the last one left; a duplicated tab finds the lock taken and picks a new id.
  let tab;
  try {
    tab = sessionStorage.weft_tab;
  } catch (e) {}
  let locked = tab ? await holdLock(TAB_LOCK + tab) : null;
  if (locked === false) {
    // The previous page of this tab may still be letting go of the lock.
    await new Promise((resolve) => setTimeout(resolve, 300));
    locked = await holdLock(TAB_LOCK + tab);
  }
  if (!locked) {
    tab = uuid();
    locked = await holdLock(TAB_LOCK + tab);
  }
  try {
    sessionStorage.weft_tab = tab;
  } catch (e) {}

  consentState = cfg.consent || "granted";
  if (cfg.gpc !== false && nav.globalPrivacyControl) consentState = "denied";
  // Settings, in crates/sdk's `Settings` order; empty or negative numbers take defaults.
  sdk(
    BOOT,
    cfg.writeKey || "",
    consentState,
    tab,
    uuid(),
    cfg.cookieDomain || "",
    cfg.maxEvents,
    cfg.maxBytes,
    cfg.retryBase,
    cfg.retryMax,
    loc.hostname,
    loc.protocol == "https:" ? 1 : "",
  );
  try {
    traits = JSON.parse(storedTraits()) || {};
  } catch (e) {}
  if (consentState == "denied") storedTraits(null);

  // Outboxes of tabs that are gone (their lock is free, or without Web Locks, a minute
  // without heartbeat): adopted now, and once more a little later for a tab whose last
  // page was still unloading.
  const hasLocks = locked !== null;
  const adoptOrphans = async () => {
    let keys = [];
    try {
      keys = Object.keys(localStorage);
    } catch (e) {}
    for (const key of keys) {
      const other = key.slice(QUEUE.length);
      if (!key.startsWith(QUEUE) || other == tab) continue;
      if (!hasLocks || (await holdLock(TAB_LOCK + other))) sdk(ADOPT, other, hasLocks ? 0 : 60000);
    }
  };
  await adoptOrphans();
  setTimeout(() => adoptOrphans().then(() => flush()), 3000);
  if (!hasLocks) setInterval(() => sdk(PERSIST), 20000);

  win.weft = api;
  booted = true;
  for (const [method, ...args] of stub) {
    if (method != "load" && api[method]) api[method](...args);
  }
  readyCallbacks.splice(0).forEach((callback) => callback(api));
  addEventListener("pagehide", exit);
  doc.addEventListener("visibilitychange", () => {
    if (doc.visibilityState == "hidden") exit();
  });
  // What earlier pages left goes out now, not after the flush interval.
  sdk(PERSIST);
  flush();
}

boot().catch((e) => console.error("[weft] not started:", e));

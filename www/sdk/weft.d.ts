// TypeScript declarations for weft's browser API: the global `weft` that the snippet
// defines and the SDK (www/sdk/pkg/weft.js) replaces once loaded. Before the SDK runs,
// every method queues its call and `user()`/`stats()` are not available yet: use
// `weft.ready(w => w.user())`.

/** Free-form properties or traits: any JSON-serialisable object. */
export type Json = { [key: string]: unknown };

/** The consent states: pending holds events in memory; denied drops and stores nothing. */
export type Consent = "pending" | "granted" | "denied";

/** Per-call options, as in the Segment spec. */
export interface CallOptions {
  /** Merged into the event's `context`; an explicit `campaign` or `page` wins. */
  context?: Json;
  /** Passed through as the event's `integrations`. */
  integrations?: Json;
  /** When the event happened, if not now. */
  timestamp?: Date | string;
}

/** Options of `weft.load(writeKey, options)`. */
export interface LoadOptions {
  /** The collector's origin (`https://t.example.com`); default: the page's own. */
  host?: string;
  /** The SDK's URL; default `<host>/sdk/pkg/weft.js`. */
  src?: string;
  /** Initial consent; default "granted". */
  consent?: Consent;
  /** Honour Global Privacy Control (`navigator.globalPrivacyControl`) as "denied"; default true. */
  gpc?: boolean;
  /** Send when this many events wait; default 20. */
  flushAt?: number;
  /** Send this many ms after an event at the latest; default 1000. */
  flushInterval?: number;
  /** Most events kept while the collector is unreachable (oldest dropped); default 1000. */
  maxEvents?: number;
  /** Most bytes of events kept (oldest dropped); default 1000000. */
  maxBytes?: number;
  /** Cookie domain; default: the registrable domain, found by probing. */
  cookieDomain?: string;
  /** First backoff delay in ms; default 1000. */
  retryBase?: number;
  /** Longest backoff delay in ms; default 60000. */
  retryMax?: number;
  /** Log sends to the console. */
  debug?: boolean;
}

/** The current visitor. */
export interface User {
  /** The anonymous id (cookie `weft_aid`). */
  anonymousId: string;
  /** The user id from `identify`, or null. */
  userId: string | null;
  /** Traits merged from every `identify`. */
  traits: Json;
}

/** Counters of the SDK's outbox. */
export interface Stats {
  /** Events not yet sent. */
  waiting: number;
  /** Events sent and not yet acknowledged. */
  inFlight: number;
  /** Bytes of events held. */
  bytes: number;
  /** Events dropped because the outbox was full. */
  dropped: number;
  /** Events the collector refused for good. */
  refused: number;
  /** Events the collector acknowledged. */
  delivered: number;
  /** False when ids live in memory only (storage blocked, consent not granted). */
  persistent: boolean;
  /** This tab's id. */
  tab: string;
  /** The consent state. */
  consent: Consent;
  /** The cookie domain in use, or null for a host-only cookie. */
  cookieDomain: string | null;
  /** The current session's id. */
  session: string;
}

/** The `weft` API. */
export interface Weft {
  /** Starts loading the SDK (the snippet's own method). */
  load(writeKey: string, options?: LoadOptions): void;
  /** Records a page view; `properties.url`/`search`/`path`/`referrer`/`title` override the page. */
  page(properties?: Json, options?: CallOptions): void;
  page(name: string, properties?: Json, options?: CallOptions): void;
  page(category: string, name: string, properties?: Json, options?: CallOptions): void;
  /** Records an action. */
  track(event: string, properties?: Json, options?: CallOptions): void;
  /** Says who the visitor is; traits are merged into `user().traits`. */
  identify(userId?: string, traits?: Json, options?: CallOptions): void;
  identify(traits: Json, options?: CallOptions): void;
  /** Attaches the visitor to an account. */
  group(groupId: string, traits?: Json, options?: CallOptions): void;
  /** Says `previousId` (default: the current id) and `userId` are one person. */
  alias(userId: string, previousId?: string, options?: CallOptions): void;
  /** Forgets the user id and traits; starts a new anonymous id. */
  reset(): void;
  /** Sets the anonymous id, for the next event on. */
  setAnonymousId(id: string): void;
  /** The current visitor (once loaded). */
  user(): User;
  /** Calls `callback` once the SDK runs (at once if it does). */
  ready(callback: (weft: Weft) => void): void;
  /** Logs sends to the console (`false` stops). */
  debug(on?: boolean): void;
  /** Changes consent. */
  consent(state: Consent): void;
  /** Sends what waits now. */
  flush(): void;
  /** The outbox's counters (once loaded). */
  stats(): Stats;
}

declare global {
  interface Window {
    weft: Weft;
  }
  const weft: Weft;
}

//! The SDK's state and [`call`], the one function the loader calls.
//!
//! One [`Sdk`] lives in a static for the page's lifetime. Calls are synchronous,
//! so a `setAnonymousId` is in force for the very next event (field report
//! `set-anon-id-before-first-event`). The loader builds each event object; this side
//! gives it the ids and the touchpoint context (`context.campaign`, `context.session`),
//! then queues the finished event and cuts the batches to send.
//!
//! Only one function crosses the boundary: `call(op, now, arg)`, an operation code from
//! [`op`], the loader's clock, and one string whose fields are separated by NUL (which
//! neither JSON text nor ids ever hold raw); the answer is one string too. Each exported
//! function costs glue on both sides of the boundary, so one coarse entry point keeps
//! the wasm and its JavaScript smaller than a dozen typed ones would.

use alloc::borrow::ToOwned;
use alloc::string::String;

use wasm_bindgen::prelude::wasm_bindgen;
use weft_core::campaign::Campaign;
use weft_core::session::Session;
use weft_core::text::{self, parse_decimal, push_decimal};
use weft_core::{stored_id, url};

use crate::browser::Browser;
use crate::identity::{self, Jar, Stores, ANON_KEY, LEGACY_ANON_KEYS, LEGACY_USER_KEYS, USER_KEY};
use crate::json::{quote, Obj};
use crate::queue::{body, Item, Outbox, Outcome};

/// localStorage key of the current session.
pub const SESSION_KEY: &str = "weft_ses";
/// localStorage key prefix of a tab's outbox (`weft_q:<tab id>`).
pub const QUEUE_PREFIX: &str = "weft_q:";

/// The operation codes of [`call`]: what each one reads from its argument (fields
/// separated by NUL) and what it answers (empty unless said).
pub mod op {
    /// Starts the SDK from [`super::Settings`]' fields, in order.
    pub const BOOT: u32 = 0;
    /// Answers the anonymous id and the user id (empty when none), NUL-separated.
    pub const IDS: u32 = 1;
    /// Makes the argument the anonymous id, for the next event on; unreadable ids are
    /// ignored.
    pub const SET_ANONYMOUS_ID: u32 = 2;
    /// Makes the argument the user id (`identify`, `alias`); blank ids are ignored.
    pub const SET_USER_ID: u32 = 3;
    /// Forgets the user id and the session; the argument is the new anonymous id.
    pub const RESET: u32 = 4;
    /// Reads the event's page URL and search string; answers the touchpoint context as
    /// JSON text: `campaign` (from the search, else from the URL's query; absent when
    /// there is none), `session`, and `idStorage: "memory"` when ids are not persisted.
    pub const TOUCH: u32 = 5;
    /// Queues an event: its `messageId`, then its JSON text; ignored when consent was
    /// denied.
    pub const PUSH: u32 = 6;
    /// Changes consent: `granted` persists ids and the outbox, `denied` drops the outbox
    /// and removes what weft stored, `pending` holds events in memory.
    pub const CONSENT: u32 = 7;
    /// Reads the most body bytes, the most events and `sentAt`; answers the next batch
    /// as its number, its body's size in bytes and its body, or nothing when nothing
    /// can be sent (nothing waits, consent not granted, the oldest event does not fit).
    pub const TAKE: u32 = 8;
    /// Settles a batch after its response. Reads the batch number, the HTTP status (0
    /// for a network error), the collector's Retry-After in ms (0 when none) and a
    /// random jitter in 0..=1000. 2xx delivers; 408, 429, 5xx and network errors retry;
    /// other statuses refuse. Answers the delay before the next attempt in ms (0 unless
    /// retrying): Retry-After when given, else exponential backoff with jitter.
    pub const SETTLE: u32 = 9;
    /// Writes this tab's outbox to localStorage (after changes, at page exit, as
    /// heartbeat).
    pub const PERSIST: u32 = 10;
    /// Reads another tab's id and a staleness in ms; moves that tab's outbox into this
    /// one's when it was last written at least that long ago. The loader finds the
    /// candidates (localStorage keys starting with [`super::QUEUE_PREFIX`]) and asks only
    /// for those whose Web Lock it holds, or with a minute's staleness where the browser
    /// has no Web Locks.
    pub const ADOPT: u32 = 11;
    /// Answers the counters as JSON text: `waiting`, `inFlight`, `bytes`, `dropped`,
    /// `refused`, `delivered`, `persistent`, `tab`, `consent`, `cookieDomain` (null for
    /// a host-only cookie), `session`.
    pub const STATS: u32 = 12;
}

/// The visitor's choice about analytics storage and sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Not asked yet: ids stay in memory, events are held and not sent.
    Pending,
    /// Ids and the outbox are persisted, events are sent.
    Granted,
    /// Nothing is persisted or sent; queued events are dropped.
    Denied,
}

impl Consent {
    fn parse(text: &str) -> Consent {
        match text {
            "pending" => Consent::Pending,
            "denied" => Consent::Denied,
            _ => Consent::Granted,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Consent::Pending => "pending",
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        }
    }
}

/// The settings of [`op::BOOT`], from the snippet's `weft.load(writeKey, options)` and
/// the page's location, in the order the argument gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings<'a> {
    /// The source's write key.
    pub write_key: &'a str,
    /// `"granted"` (also when empty), `"pending"` or `"denied"`.
    pub consent: &'a str,
    /// This tab's id (the loader keeps it in sessionStorage).
    pub tab: &'a str,
    /// The anonymous id to use when none is stored (a fresh UUID).
    pub fallback_id: &'a str,
    /// The cookie domain, instead of probing for the registrable domain (empty: probe).
    pub cookie_domain: &'a str,
    /// Most events held, oldest dropped past it (default 1000).
    pub max_events: i64,
    /// Most bytes of event JSON held, oldest dropped past it (default 1,000,000).
    pub max_bytes: i64,
    /// First backoff delay in ms (default 1000).
    pub retry_base: i64,
    /// Longest backoff delay in ms (default 60,000).
    pub retry_max: i64,
    /// The page's host name.
    pub host: &'a str,
    /// The page is served over https (`1`): cookies get `Secure`.
    pub secure: bool,
}

impl<'a> Settings<'a> {
    /// Reads the NUL-separated fields; an empty or unreadable number takes its default.
    ///
    /// # Limitations
    /// Numbers are whole: a fractional part is cut off, and exponent forms (`1e3`) take
    /// the default.
    pub fn parse(arg: &'a str) -> Settings<'a> {
        let mut fields = text::fields(arg, b'\0');
        let mut next = || fields.next().unwrap_or("");
        Settings {
            write_key: next(),
            consent: next(),
            tab: next(),
            fallback_id: next(),
            cookie_domain: next(),
            max_events: number(next(), 1000),
            max_bytes: number(next(), 1_000_000),
            retry_base: number(next(), 1000),
            retry_max: number(next(), 60_000),
            host: next(),
            secure: next() == "1",
        }
    }
}

/// A whole non-negative number (any fractional part cut off), or `default`.
fn number(field: &str, default: i64) -> i64 {
    let whole = text::split_once(field, b'.').map_or(field, |(whole, _)| whole);
    parse_decimal(whole).filter(|n| *n >= 0).unwrap_or(default)
}

/// The SDK's state for one page, over the browser's stores `S`.
pub struct Sdk<S: Stores> {
    stores: S,
    jar: Jar,
    write_key_json: String,
    tab: String,
    consent: Consent,
    anonymous_id: String,
    user_id: Option<String>,
    persistent: bool,
    session: Option<Session>,
    outbox: Outbox,
    failures: u32,
    retry_base: i64,
    retry_max: i64,
}

// The page's SDK. The lock is never contended (wasm runs on the page's one thread, and
// nothing `call` does calls back into it); it only makes the static safe to share.
static SDK: spin::Mutex<Option<Sdk<Browser>>> = spin::Mutex::new(None);

/// Runs operation `op` (see [`op`]) with argument `arg` at time `now` (ms since the
/// epoch, the loader's clock) and answers its result; before [`op::BOOT`], every other
/// operation answers nothing.
#[wasm_bindgen]
pub fn call(op: u32, now: f64, arg: &str) -> String {
    let mut state = SDK.lock();
    if op == op::BOOT {
        *state = Some(Sdk::open(Browser::open(), Settings::parse(arg)));
        return String::new();
    }
    match state.as_mut() {
        Some(sdk) => sdk.call(op, now as i64, arg),
        None => String::new(),
    }
}

impl<S: Stores> Sdk<S> {
    /// Starts the SDK over `stores`: reads the stored ids (the cookie wins and a
    /// diverging localStorage is resynced) and restores this tab's outbox.
    pub fn open(stores: S, settings: Settings) -> Sdk<S> {
        let consent = Consent::parse(settings.consent);
        let domain = if settings.cookie_domain.is_empty() {
            identity::registrable_domain(&stores, settings.host)
        } else {
            Some(settings.cookie_domain.to_owned())
        };
        let jar = Jar {
            domain,
            secure: settings.secure,
            persist: consent == Consent::Granted,
        };
        let mut write_key_json = String::new();
        quote(&mut write_key_json, settings.write_key);
        let anonymous_id = identity::read(&stores, ANON_KEY, LEGACY_ANON_KEYS)
            .unwrap_or_else(|| settings.fallback_id.to_owned());
        let mut sdk = Sdk {
            user_id: identity::read(&stores, USER_KEY, LEGACY_USER_KEYS),
            session: stores.get(SESSION_KEY).as_deref().and_then(Session::parse),
            write_key_json,
            tab: settings.tab.to_owned(),
            consent,
            anonymous_id,
            persistent: false,
            outbox: Outbox::new(settings.max_events as usize, settings.max_bytes as usize),
            failures: 0,
            retry_base: settings.retry_base,
            retry_max: settings.retry_max,
            stores,
            jar,
        };
        if consent == Consent::Denied {
            sdk.forget();
        } else {
            sdk.save_ids();
            if consent == Consent::Granted {
                if let Some(stored) = sdk.stores.get(&sdk.queue_key()) {
                    sdk.outbox.restore(&stored);
                }
            }
        }
        sdk
    }

    /// Runs one operation other than [`op::BOOT`]; see [`call`].
    pub fn call(&mut self, op: u32, now: i64, arg: &str) -> String {
        let mut fields = text::fields(arg, b'\0');
        let mut next = || fields.next().unwrap_or("");
        let mut out = String::new();
        match op {
            op::IDS => {
                out.push_str(&self.anonymous_id);
                out.push('\0');
                out.push_str(self.user_id.as_deref().unwrap_or(""));
            }
            op::SET_ANONYMOUS_ID | op::SET_USER_ID => {
                if let Some(id) = stored_id::parse(arg) {
                    if op == op::SET_USER_ID {
                        self.user_id = Some(id);
                    } else {
                        self.anonymous_id = id;
                    }
                    self.save_ids();
                }
            }
            op::RESET => {
                self.anonymous_id = arg.to_owned();
                self.user_id = None;
                self.session = None;
                self.stores.remove(SESSION_KEY);
                self.save_ids();
            }
            op::TOUCH => out = self.touch(next(), next(), now),
            op::PUSH => {
                let (id, json) = (next(), next());
                if self.consent != Consent::Denied {
                    self.outbox.push(Item::new(id.to_owned(), json.to_owned()));
                }
            }
            op::CONSENT => self.set_consent(arg, now),
            op::TAKE => out = self.take(number(next(), 0), number(next(), 0), next()),
            op::SETTLE => {
                let batch = number(next(), 0) as u32;
                let status = number(next(), 0);
                let delay = self.settle(batch, status, number(next(), 0), number(next(), 0));
                push_decimal(&mut out, delay);
            }
            op::PERSIST => self.persist(now),
            op::ADOPT => self.adopt(next(), number(next(), 0), now),
            op::STATS => out = self.stats(),
            _ => {}
        }
        out
    }

    fn queue_key(&self) -> String {
        let mut key = String::from(QUEUE_PREFIX);
        key.push_str(&self.tab);
        key
    }

    fn save_ids(&mut self) {
        let stores = &self.stores;
        self.persistent = identity::write(stores, &self.jar, ANON_KEY, Some(&self.anonymous_id));
        identity::write(stores, &self.jar, USER_KEY, self.user_id.as_deref());
    }

    fn forget(&mut self) {
        self.outbox.clear();
        let jar = Jar {
            persist: true,
            ..self.jar.clone()
        };
        identity::write(&self.stores, &jar, ANON_KEY, None);
        identity::write(&self.stores, &jar, USER_KEY, None);
        self.stores.remove(SESSION_KEY);
        self.stores.remove(&self.queue_key());
        self.persistent = false;
    }

    fn set_consent(&mut self, state: &str, now: i64) {
        self.consent = Consent::parse(state);
        self.jar.persist = self.consent == Consent::Granted;
        match self.consent {
            Consent::Denied => self.forget(),
            Consent::Granted => {
                self.save_ids();
                self.persist(now);
            }
            Consent::Pending => {}
        }
    }

    fn persist(&mut self, now: i64) {
        if self.consent != Consent::Granted || !self.stores.has_storage() {
            return;
        }
        let key = self.queue_key();
        loop {
            let text = self.outbox.to_text(now);
            if text.is_empty() {
                self.stores.remove(&key);
                return;
            }
            // A full localStorage must not break the host page's own writes: shed the
            // oldest events until the outbox fits, and count them as dropped.
            if self.stores.set(&key, &text) || self.outbox.waiting() == 0 {
                return;
            }
            self.outbox.shed();
        }
    }

    fn touch(&mut self, page_url: &str, search: &str, now: i64) -> String {
        let mut campaign = Campaign::from_query(search);
        if campaign.is_empty() {
            campaign = Campaign::from_query(url::query(page_url));
        }
        let mut context = Obj::new();
        let mut key = None;
        if !campaign.is_empty() {
            let mut fields = Obj::new();
            campaign.for_each_field(|name, value| {
                fields.str(name, value);
            });
            context.raw("campaign", &fields.end());
            key = Some(campaign.key());
        }

        let (session, started) = Session::advance(self.session.take(), now, key.as_deref());
        let mut session_json = Obj::new();
        session_json
            .str("id", &session.id())
            .int("count", session.count as i64);
        if started {
            session_json.bool("start", true);
        }
        context.raw("session", &session_json.end());
        if self.jar.persist {
            self.stores.set(SESSION_KEY, &session.to_text());
        }
        self.session = Some(session);
        if !self.persistent {
            context.str("idStorage", "memory");
        }
        context.end()
    }

    fn take(&mut self, max_body: i64, max_events: i64, sent_at: &str) -> String {
        let mut out = String::new();
        if self.consent != Consent::Granted {
            return out;
        }
        let Some((batch, items)) = self.outbox.take(max_body as usize, max_events as usize) else {
            return out;
        };
        let text = body(items, sent_at, &self.write_key_json);
        push_decimal(&mut out, i64::from(batch));
        out.push('\0');
        push_decimal(&mut out, text.len() as i64);
        out.push('\0');
        out.push_str(&text);
        out
    }

    fn settle(&mut self, batch: u32, status: i64, retry_after_ms: i64, jitter: i64) -> i64 {
        let outcome = match status {
            200..=299 => Outcome::Delivered,
            0 | 408 | 429 | 500.. => Outcome::Retry,
            _ => Outcome::Refused,
        };
        self.outbox.settle(batch, outcome);
        if outcome != Outcome::Retry {
            self.failures = 0;
            return 0;
        }
        self.failures = self.failures.saturating_add(1);
        if retry_after_ms > 0 {
            return retry_after_ms.min(3_600_000);
        }
        let doublings = self.failures.min(20) - 1;
        let full = self
            .retry_base
            .saturating_mul(1 << doublings)
            .min(self.retry_max);
        full / 2 + full / 2 * jitter.min(1000) / 1000
    }

    fn adopt(&mut self, tab: &str, stale_ms: i64, now: i64) {
        if self.consent != Consent::Granted || tab == self.tab {
            return;
        }
        let mut key = String::from(QUEUE_PREFIX);
        key.push_str(tab);
        let Some(stored) = self.stores.get(&key) else {
            return;
        };
        // The stored form's first line is the time it was written; unreadable is old.
        let first = text::split_once(&stored, b'\n').map_or(stored.as_str(), |(line, _)| line);
        let written = parse_decimal(first);
        if now - written.unwrap_or(0) >= stale_ms {
            self.outbox.restore(&stored);
            self.persist(now);
            self.stores.remove(&key);
        }
    }

    fn stats(&self) -> String {
        let outbox = &self.outbox;
        let mut json = Obj::new();
        json.int("waiting", outbox.waiting() as i64)
            .int("inFlight", outbox.in_flight() as i64)
            .int("bytes", outbox.bytes() as i64)
            .int("dropped", i64::from(outbox.dropped))
            .int("refused", i64::from(outbox.refused))
            .int("delivered", i64::from(outbox.delivered))
            .bool("persistent", self.persistent)
            .str("tab", &self.tab)
            .str("consent", self.consent.as_str());
        match &self.jar.domain {
            Some(domain) => json.str("cookieDomain", domain),
            None => json.raw("cookieDomain", "null"),
        };
        let session = self.session.as_ref().map(Session::id).unwrap_or_default();
        json.str("session", &session).end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::fake;

    const T0: i64 = 1_700_000_000_000;

    fn settings(consent: &str) -> String {
        let fields = [
            "key\"1",
            consent,
            "tab-1",
            "fresh-id",
            "",
            "",
            "",
            "1000",
            "8000",
            "www.example.com",
            "1",
            "",
        ];
        fields.join("\0")
    }

    fn open(consent: &str) -> Sdk<fake::Browser> {
        Sdk::open(
            fake::Browser::on("www.example.com"),
            Settings::parse(&settings(consent)),
        )
    }

    fn push(sdk: &mut Sdk<fake::Browser>, id: &str) {
        let json = ["{\"messageId\":\"", id, "\"}"].concat();
        sdk.call(op::PUSH, T0, &[id, &json].join("\0"));
    }

    fn take(sdk: &mut Sdk<fake::Browser>) -> String {
        let arg = ["65536", "100", "2024-01-01T00:00:00.000Z"].join("\0");
        sdk.call(op::TAKE, T0, &arg)
    }

    #[test]
    fn settings_read_their_fields_and_default_unreadable_numbers() {
        let fields = [
            "k",
            "pending",
            "t",
            "f",
            "d.example",
            "",
            "-3",
            "250.7",
            "x",
            "h",
            "1",
        ];
        let text = fields.join("\0");
        let expected = Settings {
            write_key: "k",
            consent: "pending",
            tab: "t",
            fallback_id: "f",
            cookie_domain: "d.example",
            max_events: 1000,
            max_bytes: 1_000_000,
            retry_base: 250,
            retry_max: 60_000,
            host: "h",
            secure: true,
        };
        assert_eq!(Settings::parse(&text), expected);
        assert_eq!(Settings::parse("").max_events, 1000);
    }

    #[test]
    fn set_anon_id_before_first_event() {
        let mut sdk = open("granted");
        assert_eq!(sdk.call(op::IDS, T0, ""), "fresh-id\0");
        sdk.call(op::SET_ANONYMOUS_ID, T0, "anon-fixed-1");
        assert_eq!(sdk.call(op::IDS, T0, ""), "anon-fixed-1\0");
        assert_eq!(sdk.stores.get(ANON_KEY).as_deref(), Some("anon-fixed-1"));
        assert_eq!(
            sdk.stores.cookie(ANON_KEY, "example.com").as_deref(),
            Some("anon-fixed-1")
        );
        sdk.call(op::SET_ANONYMOUS_ID, T0, " null ");
        sdk.call(op::SET_USER_ID, T0, "user-1");
        assert_eq!(sdk.call(op::IDS, T0, ""), "anon-fixed-1\0user-1");
    }

    #[test]
    fn consent_pending_holds_granted_sends_denied_forgets() {
        let mut sdk = open("pending");
        push(&mut sdk, "m-1");
        assert_eq!(take(&mut sdk), "", "pending holds events");
        assert_eq!(sdk.stores.cookies(), "", "pending persists nothing");

        sdk.call(op::CONSENT, T0, "granted");
        assert_eq!(sdk.stores.get(ANON_KEY).as_deref(), Some("fresh-id"));
        assert!(
            sdk.stores.get("weft_q:tab-1").is_some(),
            "the outbox is persisted"
        );
        let batch = take(&mut sdk);
        assert!(batch.contains("\"messageId\":\"m-1\""), "{batch}");

        sdk.call(op::CONSENT, T0, "denied");
        push(&mut sdk, "m-2");
        assert_eq!(take(&mut sdk), "");
        assert_eq!(sdk.stores.cookies(), "");
        assert_eq!(sdk.stores.get(ANON_KEY), None);
        assert_eq!(sdk.stores.get("weft_q:tab-1"), None);
        assert!(sdk
            .call(op::STATS, T0, "")
            .contains("\"consent\":\"denied\""));
    }

    #[test]
    fn batches_carry_their_size_and_the_quoted_write_key() {
        let mut sdk = open("granted");
        push(&mut sdk, "m-1");
        let batch = take(&mut sdk);
        let fields: Vec<&str> = batch.split('\0').collect();
        assert_eq!(fields[0], "1");
        assert_eq!(fields[1], fields[2].len().to_string());
        assert!(
            fields[2].ends_with("\"writeKey\":\"key\\\"1\"}"),
            "{}",
            fields[2]
        );
        assert_eq!(take(&mut sdk), "", "the event is in flight");
    }

    #[test]
    fn the_campaign_comes_from_the_search_else_the_url_and_starts_a_session() {
        let mut sdk = open("granted");
        let cases = [
            (
                "https://a.example/x?utm_source=url",
                "?utm_source=search",
                "search",
            ),
            ("https://a.example/x?utm_source=url", "", "url"),
        ];
        for (url, search, source) in cases {
            let context = sdk.call(op::TOUCH, T0, &[url, search].join("\0"));
            let expected = ["{\"campaign\":{\"source\":\"", source, "\"},\"session\":"].concat();
            assert!(context.starts_with(&expected), "{context}");
            assert!(
                context.contains("\"start\":true"),
                "a new campaign starts a session"
            );
        }
        let plain = sdk.call(op::TOUCH, T0 + 1000, "https://a.example/y\0");
        assert!(plain.starts_with("{\"session\":{\"id\":\""), "{plain}");
        assert!(
            plain.contains("\"count\":2}"),
            "no campaign continues it: {plain}"
        );
        assert!(!plain.contains("idStorage"));
        assert!(sdk.stores.get(SESSION_KEY).is_some());
    }

    #[test]
    fn storage_throws_fallback() {
        let browser = fake::Browser {
            storage_throws: true,
            cookies_ignored: true,
            ..fake::Browser::on("www.example.com")
        };
        let mut sdk = Sdk::open(browser, Settings::parse(&settings("granted")));
        let context = sdk.call(op::TOUCH, T0, "https://a.example/\0");
        assert!(context.ends_with(",\"idStorage\":\"memory\"}"), "{context}");
        push(&mut sdk, "m-1");
        sdk.call(op::PERSIST, T0, "");
        assert!(take(&mut sdk).contains("m-1"), "events still leave");
        assert!(sdk.call(op::STATS, T0, "").contains("\"persistent\":false"));
    }

    #[test]
    fn settling_backs_off_exponentially_and_honours_retry_after() {
        let mut sdk = open("granted");
        // (status, Retry-After ms, jitter, delay): base 1000 ms, longest 8000 ms.
        let cases = [
            ("0", "0", "0", "500"),
            ("503", "0", "1000", "2000"),
            ("500", "0", "500", "3000"),
            ("408", "0", "0", "4000"),
            ("500", "0", "1000", "8000"),
            ("429", "3000", "0", "3000"),
            ("400", "0", "0", "0"),
            ("500", "0", "0", "500"),
            ("200", "0", "0", "0"),
        ];
        for (status, after, jitter, delay) in cases {
            let arg = ["1", status, after, jitter].join("\0");
            assert_eq!(
                sdk.call(op::SETTLE, T0, &arg),
                delay,
                "{status} {after} {jitter}"
            );
        }
    }

    #[test]
    fn refused_and_delivered_batches_are_counted() {
        let mut sdk = open("granted");
        for (id, status) in [("m-1", "200"), ("m-2", "400"), ("m-3", "503")] {
            push(&mut sdk, id);
            let batch = take(&mut sdk);
            let number = batch.split('\0').next().unwrap_or("");
            sdk.call(op::SETTLE, T0, &[number, status, "0", "0"].join("\0"));
        }
        let stats = sdk.call(op::STATS, T0, "");
        let expected = "{\"waiting\":1,\"inFlight\":0,\"bytes\":19,\"dropped\":0,\"refused\":1,\
                        \"delivered\":1,\"persistent\":true,\"tab\":\"tab-1\",\
                        \"consent\":\"granted\",\"cookieDomain\":\"example.com\",\"session\":\"\"}";
        assert_eq!(stats, expected);
    }

    #[test]
    fn stale_outboxes_of_other_tabs_are_adopted() {
        let mut sdk = open("granted");
        let old = "1000\nm-9\t{\"messageId\":\"m-9\"}";
        sdk.stores.set("weft_q:gone", old);
        let fresh = [&T0.to_string(), "\nm-8\t{\"messageId\":\"m-8\"}"].concat();
        sdk.stores.set("weft_q:fresh", &fresh);
        push(&mut sdk, "m-1");
        sdk.call(op::PERSIST, T0, "");

        for tab in ["gone", "fresh", "tab-1", "missing"] {
            sdk.call(op::ADOPT, T0, &[tab, "60000"].join("\0"));
        }
        assert_eq!(sdk.stores.get("weft_q:gone"), None);
        assert_eq!(sdk.stores.get("weft_q:fresh"), Some(fresh), "not stale yet");
        assert!(
            sdk.stores.get("weft_q:tab-1").is_some(),
            "its own outbox stays"
        );
        let batch = take(&mut sdk);
        let adopted_first = batch.find("m-9").zip(batch.find("m-1"));
        assert!(adopted_first.is_some_and(|(a, b)| a < b), "{batch}");
        assert!(!batch.contains("m-8"));

        sdk.call(op::ADOPT, T0, &["fresh", "0"].join("\0"));
        assert_eq!(
            sdk.stores.get("weft_q:fresh"),
            None,
            "held locks adopt at once"
        );
    }

    #[test]
    fn reset_starts_a_new_anonymous_id_and_session() {
        let mut sdk = open("granted");
        sdk.call(op::SET_USER_ID, T0, "user-1");
        sdk.call(op::TOUCH, T0, "https://a.example/\0");
        sdk.call(op::RESET, T0, "anon-2");
        assert_eq!(sdk.call(op::IDS, T0, ""), "anon-2\0");
        assert_eq!(sdk.stores.get(SESSION_KEY), None);
        assert_eq!(sdk.stores.get(USER_KEY), None);
        let context = sdk.call(op::TOUCH, T0, "https://a.example/\0");
        assert!(context.contains("\"count\":1,\"start\":true"), "{context}");
    }
}

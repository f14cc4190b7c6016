//! The visitor's ids in the browser: the anonymous id, the user id, and where they live.
//!
//! The anonymous id lives in the `weft_aid` cookie on the registrable domain (so every
//! subdomain sees the same one) and is mirrored in localStorage. When they disagree the
//! cookie wins and the mirror is rewritten, never the other way round (field report
//! `subdomain-anonid-resync`). Ids other libraries stored (Segment's
//! `ajs_anonymous_id`, Jitsu's `__anon_id`) are read too, tolerantly, so a site that
//! migrates keeps its visitors (`stored-id-parse-tolerant`). Every storage access can
//! throw or be ignored (Safari private mode, blocked site data): then the ids live in
//! memory for the page's lifetime and nothing escapes into the host page
//! (`storage-throws-fallback`).
//!
//! The logic runs over the [`Stores`] trait so that it is tested natively with a fake
//! browser; `crate::browser` implements it over `document.cookie` and localStorage.

use alloc::borrow::ToOwned;
use alloc::string::String;

use weft_core::stored_id;
use weft_core::text::push_decimal;

/// Cookie and localStorage name of the anonymous id.
pub const ANON_KEY: &str = "weft_aid";
/// Cookie and localStorage name of the user id.
pub const USER_KEY: &str = "weft_uid";
/// Names other libraries keep an anonymous id under, read when weft has none.
pub const LEGACY_ANON_KEYS: &[&str] = &["ajs_anonymous_id", "__anon_id"];
/// Names other libraries keep a user id under, read when weft has none.
pub const LEGACY_USER_KEYS: &[&str] = &["ajs_user_id"];
/// How long the id cookies live: 400 days, the most Chromium keeps.
pub const COOKIE_MAX_AGE_SECS: i64 = 400 * 24 * 3600;

const PROBE: &str = "weft_probe";

/// The browser's stores, as the SDK needs them. Implementations swallow every exception:
/// a read that throws is `None`, a write that throws is `false`.
pub trait Stores {
    /// The `document.cookie` string; empty when cookies are unreadable.
    fn cookies(&self) -> String;
    /// Assigns `line` to `document.cookie`; the browser may ignore it silently.
    fn set_cookie(&self, line: &str);
    /// A localStorage entry.
    fn get(&self, key: &str) -> Option<String>;
    /// Writes a localStorage entry; false when storage threw.
    fn set(&self, key: &str, value: &str) -> bool;
    /// Removes a localStorage entry.
    fn remove(&self, key: &str);
    /// True when localStorage is usable (it answered a probe write).
    fn has_storage(&self) -> bool;
}

/// Where ids are written: the cookie attributes and whether persisting is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jar {
    /// `Some(domain)` for a cookie on the registrable domain, `None` for host-only.
    pub domain: Option<String>,
    /// Add `Secure` (the page is served over https).
    pub secure: bool,
    /// False while consent is pending or denied: nothing is written.
    pub persist: bool,
}

impl Jar {
    /// The `document.cookie` line that sets `name` to `value` (or deletes it when `value`
    /// is `None`).
    pub fn cookie_line(&self, name: &str, value: Option<&str>) -> String {
        let mut line = String::with_capacity(128);
        line.push_str(name);
        line.push('=');
        line.push_str(&value.map(stored_id::encode_cookie).unwrap_or_default());
        line.push_str("; path=/; max-age=");
        push_decimal(
            &mut line,
            if value.is_some() {
                COOKIE_MAX_AGE_SECS
            } else {
                0
            },
        );
        if let Some(domain) = &self.domain {
            line.push_str("; domain=");
            line.push_str(domain);
        }
        line.push_str("; samesite=lax");
        if self.secure {
            line.push_str("; secure");
        }
        line
    }
}

/// Finds the registrable domain of `host` by setting a probe cookie on successively
/// longer domains (`example.com`, then `app.example.com`, ...) until the browser keeps
/// one; `None` when none sticks (IP addresses, `localhost`, cookies blocked).
pub fn registrable_domain(stores: &dyn Stores, host: &str) -> Option<String> {
    for domain in stored_id::domain_candidates(host) {
        let jar = Jar {
            domain: Some(domain.to_owned()),
            ..Jar::default()
        };
        stores.set_cookie(&jar.cookie_line(PROBE, Some("1")));
        let kept = stored_id::cookie_id(&stores.cookies(), PROBE).is_some();
        if kept {
            stores.set_cookie(&jar.cookie_line(PROBE, None));
            return Some(domain.to_owned());
        }
    }
    None
}

/// Reads an id: weft's cookie, then the other libraries' cookies, then weft's
/// localStorage entry, then theirs. Empty and unreadable values count as absent.
pub fn read(stores: &dyn Stores, key: &str, legacy: &[&str]) -> Option<String> {
    let jar = stores.cookies();
    for cookies in [true, false] {
        for i in 0..=legacy.len() {
            let name = if i == 0 { key } else { legacy[i - 1] };
            let found = if cookies {
                stored_id::cookie_id(&jar, name)
            } else {
                stores.get(name).as_deref().and_then(stored_id::parse)
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// Writes an id (or removes it, for `None`) in weft's cookie and localStorage entry,
/// touching only the stores that differ. Returns false when neither store kept it.
pub fn write(stores: &dyn Stores, jar: &Jar, key: &str, id: Option<&str>) -> bool {
    if !jar.persist {
        return false;
    }
    let cookies = stores.cookies();
    let in_cookie = stored_id::cookie_id(&cookies, key);
    if in_cookie.as_deref() != id {
        stores.set_cookie(&jar.cookie_line(key, id));
    }
    let in_storage = stores.get(key).as_deref().and_then(stored_id::parse);
    let stored = match id {
        Some(id) if in_storage.as_deref() == Some(id) => true,
        Some(id) => stores.set(key, id),
        None => {
            stores.remove(key);
            true
        }
    };
    let cookie_kept = id.is_none() || stored_id::cookie_id(&stores.cookies(), key).as_deref() == id;
    stored || cookie_kept
}

#[cfg(test)]
pub mod fake {
    //! A fake browser for native tests: a cookie jar that honours `domain=` the way
    //! browsers do for one host, and a localStorage that can be made to throw.

    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::Stores;

    /// One origin's view of the stores.
    #[derive(Debug, Default)]
    pub struct Browser {
        /// The page's host.
        pub host: String,
        /// Cookies by (name, domain); domain empty for host-only.
        pub cookies: RefCell<BTreeMap<(String, String), String>>,
        /// localStorage of this origin.
        pub local: RefCell<BTreeMap<String, String>>,
        /// Every localStorage access throws.
        pub storage_throws: bool,
        /// Cookie writes are ignored.
        pub cookies_ignored: bool,
        /// Domains that are public suffixes (cookies on them are refused).
        pub suffixes: Vec<String>,
    }

    impl Browser {
        /// A browser on `host`, with `com`, `test` and `co.uk` as public suffixes.
        pub fn on(host: &str) -> Browser {
            Browser {
                host: host.to_owned(),
                suffixes: vec!["com".into(), "test".into(), "co.uk".into()],
                ..Browser::default()
            }
        }

        /// The value of cookie `name` on `domain` ("" = host-only).
        pub fn cookie(&self, name: &str, domain: &str) -> Option<String> {
            self.cookies
                .borrow()
                .get(&(name.to_owned(), domain.to_owned()))
                .cloned()
        }
    }

    impl Stores for Browser {
        fn cookies(&self) -> String {
            let jar = self.cookies.borrow();
            let visible = jar.iter().filter(|((_, domain), _)| {
                domain.is_empty()
                    || self.host == *domain
                    || self.host.ends_with(&[".", domain.as_str()].concat())
            });
            let pairs: Vec<String> = visible
                .map(|((name, _), value)| [name.as_str(), "=", value].concat())
                .collect();
            pairs.join("; ")
        }

        fn set_cookie(&self, line: &str) {
            if self.cookies_ignored {
                return;
            }
            let mut parts = line.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                return;
            };
            let mut domain = String::new();
            let mut delete = false;
            for attr in parts {
                if let Some(d) = attr.strip_prefix("domain=") {
                    domain = d.trim_start_matches('.').to_owned();
                }
                delete |= attr == "max-age=0";
            }
            let allowed = domain.is_empty()
                || (!self.suffixes.contains(&domain)
                    && (self.host == domain || self.host.ends_with(&[".", &domain].concat())));
            if !allowed {
                return;
            }
            let key = (name.to_owned(), domain);
            if delete {
                self.cookies.borrow_mut().remove(&key);
            } else {
                self.cookies.borrow_mut().insert(key, value.to_owned());
            }
        }

        fn get(&self, key: &str) -> Option<String> {
            if self.storage_throws {
                return None;
            }
            self.local.borrow().get(key).cloned()
        }

        fn set(&self, key: &str, value: &str) -> bool {
            if self.storage_throws {
                return false;
            }
            self.local
                .borrow_mut()
                .insert(key.to_owned(), value.to_owned());
            true
        }

        fn remove(&self, key: &str) {
            if !self.storage_throws {
                self.local.borrow_mut().remove(key);
            }
        }

        fn has_storage(&self) -> bool {
            !self.storage_throws
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Browser;
    use super::*;

    fn persisting(domain: Option<&str>) -> Jar {
        Jar {
            domain: domain.map(str::to_owned),
            secure: false,
            persist: true,
        }
    }

    #[test]
    fn the_registrable_domain_is_the_shortest_that_keeps_a_cookie() {
        let cases = [
            ("app.example.com", Some("example.com")),
            ("www.shop.example.co.uk", Some("example.co.uk")),
            ("localhost", None),
            ("127.0.0.1", None),
        ];
        for (host, expected) in cases {
            let browser = Browser::on(host);
            assert_eq!(
                registrable_domain(&browser, host).as_deref(),
                expected,
                "{host}"
            );
            assert_eq!(browser.cookies(), "", "{host}: the probe is removed");
        }
    }

    #[test]
    fn subdomain_anonid_resync() {
        let app = Browser::on("app.example.com");
        app.set_cookie("ajs_anonymous_id=anon-shared; domain=.example.com");
        app.set("ajs_anonymous_id", "anon-stale");

        let domain = registrable_domain(&app, "app.example.com");
        let id = read(&app, ANON_KEY, LEGACY_ANON_KEYS).unwrap();
        assert_eq!(id, "anon-shared");
        assert!(write(
            &app,
            &persisting(domain.as_deref()),
            ANON_KEY,
            Some(&id)
        ));
        assert_eq!(app.get(ANON_KEY).as_deref(), Some("anon-shared"));
        assert_eq!(
            app.cookie("ajs_anonymous_id", "example.com").as_deref(),
            Some("anon-shared")
        );
        assert_eq!(
            app.cookie(ANON_KEY, "example.com").as_deref(),
            Some("anon-shared")
        );

        // www. sees the cookie on the registrable domain, and nothing in its own storage.
        let www = Browser::on("www.example.com");
        *www.cookies.borrow_mut() = app.cookies.borrow().clone();
        assert_eq!(
            read(&www, ANON_KEY, LEGACY_ANON_KEYS).as_deref(),
            Some("anon-shared")
        );

        // A diverging localStorage mirror is rewritten from the cookie, never the reverse.
        www.set(ANON_KEY, "anon-other");
        let id = read(&www, ANON_KEY, LEGACY_ANON_KEYS).unwrap();
        assert_eq!(id, "anon-shared");
        write(&www, &persisting(Some("example.com")), ANON_KEY, Some(&id));
        assert_eq!(www.get(ANON_KEY).as_deref(), Some("anon-shared"));
        assert_eq!(
            www.cookie(ANON_KEY, "example.com").as_deref(),
            Some("anon-shared")
        );
    }

    #[test]
    fn an_empty_cookie_counts_as_absent() {
        let browser = Browser::on("www.example.com");
        browser.set_cookie("weft_aid=; domain=example.com");
        browser.set(ANON_KEY, "from-storage");
        assert_eq!(
            read(&browser, ANON_KEY, LEGACY_ANON_KEYS).as_deref(),
            Some("from-storage")
        );
    }

    #[test]
    fn stored_id_parse_tolerant() {
        let cases: [(&str, &str, &str); 6] = [
            ("local", "ajs_anonymous_id", "\"anon-123\""),
            ("local", "ajs_anonymous_id", "anon-123"),
            ("cookie", "ajs_anonymous_id", "%22anon-123%22"),
            ("cookie", "ajs_anonymous_id", "anon-123"),
            ("cookie", "__anon_id", "1724633695283.638279"),
            ("cookie", "__anon_id", "00123"),
        ];
        let expected = ["anon-123", "anon-123", "anon-123", "anon-123"];
        let expected = expected.iter().chain(&["1724633695283.638279", "00123"]);
        for ((store, name, raw), want) in cases.iter().zip(expected) {
            let browser = Browser::on("www.example.com");
            if *store == "local" {
                browser.set(name, raw);
            } else {
                browser.set_cookie(&[name, "=", raw].concat());
            }
            let id = read(&browser, ANON_KEY, LEGACY_ANON_KEYS);
            assert_eq!(id.as_deref(), Some(*want), "{store} {name}={raw}");
            write(&browser, &persisting(None), ANON_KEY, id.as_deref());
            assert_eq!(
                browser.get(ANON_KEY).as_deref(),
                Some(*want),
                "canonical in storage"
            );
            let cookie = browser.cookie(ANON_KEY, "").unwrap();
            assert_eq!(
                stored_id::parse(&cookie).as_deref(),
                Some(*want),
                "canonical cookie"
            );
        }
    }

    #[test]
    fn storage_throws_fallback() {
        let browser = Browser {
            storage_throws: true,
            cookies_ignored: true,
            ..Browser::on("www.example.com")
        };
        assert_eq!(registrable_domain(&browser, "www.example.com"), None);
        assert_eq!(read(&browser, ANON_KEY, LEGACY_ANON_KEYS), None);
        assert!(!write(
            &browser,
            &persisting(None),
            ANON_KEY,
            Some("anon-1")
        ));
    }

    #[test]
    fn nothing_is_written_without_consent() {
        let browser = Browser::on("www.example.com");
        let jar = Jar {
            persist: false,
            ..persisting(None)
        };
        assert!(!write(&browser, &jar, ANON_KEY, Some("anon-1")));
        assert_eq!(browser.cookies(), "");
        assert_eq!(browser.get(ANON_KEY), None);
    }

    #[test]
    fn removing_an_id_clears_both_stores() {
        let browser = Browser::on("www.example.com");
        let jar = persisting(Some("example.com"));
        write(&browser, &jar, USER_KEY, Some("user-1"));
        assert_eq!(
            read(&browser, USER_KEY, LEGACY_USER_KEYS).as_deref(),
            Some("user-1")
        );
        write(&browser, &jar, USER_KEY, None);
        assert_eq!(read(&browser, USER_KEY, LEGACY_USER_KEYS), None);
    }

    #[test]
    fn cookie_lines_carry_the_attributes() {
        let jar = Jar {
            domain: Some("example.com".into()),
            secure: true,
            persist: true,
        };
        assert_eq!(
            jar.cookie_line(ANON_KEY, Some("a b")),
            "weft_aid=a%20b; path=/; max-age=34560000; domain=example.com; samesite=lax; secure"
        );
        assert!(jar
            .cookie_line(ANON_KEY, None)
            .starts_with("weft_aid=; path=/; max-age=0;"));
    }
}

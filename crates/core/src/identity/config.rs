//! The workspace's identity rules: kinds with their limits and priorities, the junk list,
//! and which event fields carry which kind of identifier.
//!
//! Read from the `[identity]` table of `weft.toml`; every field has a default, so an empty
//! table (or none) gives the rules the design names: `user_id` one per profile and kept
//! first, `email` next, other kinds five per profile within a week.
//!
//! ```toml
//! [identity]
//! junk = ["test@example.com", "n/a"]
//! ga_cookie = ["context.cookies._ga"]
//!
//! [identity.fields]
//! "traits.email" = "email"
//! "context.traits.email" = "email"
//! "context.traits.phone" = "phone"
//!
//! [identity.kinds.phone]
//! limit = 2
//! window_days = 30
//! priority = 40
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::IdKind;
use crate::time::{Millis, DAY};

/// How many identifiers of one kind a profile may hold, and how much the kind counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindRule {
    /// The most identifiers of this kind one profile holds (within `window_days`, when
    /// set); at least 1. `user_id` is always 1, whatever is configured: two user ids are
    /// two people.
    pub limit: u32,
    /// When set, the limit counts only identifiers first seen within any window of this
    /// many days, so a person may collect anonymous ids over the years but not dozens a
    /// week.
    pub window_days: Option<u32>,
    /// Higher is kept first: when an event cannot be resolved with all its identifiers,
    /// the lowest-priority ones are dropped.
    pub priority: u32,
}

impl Default for KindRule {
    fn default() -> KindRule {
        KindRule {
            limit: 5,
            window_days: Some(7),
            priority: 20,
        }
    }
}

impl KindRule {
    /// The window in milliseconds, if any.
    pub fn window(&self) -> Option<Millis> {
        self.window_days.map(|d| Millis::from(d) * DAY)
    }
}

/// The identity rules of a workspace (`[identity]` in `weft.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Rules by kind name. Kinds not listed here take the built-in rule for `user_id`,
    /// `email` and `anonymous_id`, else [`IdentityConfig::other`].
    pub kinds: BTreeMap<String, KindRule>,
    /// The rule of kinds not listed in `kinds` nor built in.
    pub other: KindRule,
    /// Values refused as identifiers beside the built-in placeholders
    /// ([`DEFAULT_JUNK`](super::normalise::DEFAULT_JUNK)), compared without ASCII case.
    pub junk: Vec<String>,
    /// Event fields, as dotted paths from the event's root (`traits.email`,
    /// `context.traits.phone`, `properties.device_id`), mapped to the kind of identifier
    /// their string (or number) value is. Default: `traits.email` and
    /// `context.traits.email` are emails.
    pub fields: BTreeMap<String, String>,
    /// Dotted paths holding a `_ga` cookie (its value, the `_ga=` pair or a whole `Cookie`
    /// header); the client id in it becomes a `ga_client_id` identifier.
    pub ga_cookie: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> IdentityConfig {
        let fields = [("traits.email", "email"), ("context.traits.email", "email")];
        IdentityConfig {
            kinds: BTreeMap::new(),
            other: KindRule::default(),
            junk: Vec::new(),
            fields: fields
                .iter()
                .map(|(p, k)| ((*p).to_owned(), (*k).to_owned()))
                .collect(),
            ga_cookie: Vec::new(),
        }
    }
}

impl IdentityConfig {
    /// The rule in force for `kind`.
    pub fn rule(&self, kind: &IdKind) -> KindRule {
        let mut rule = match self.kinds.get(kind.as_str()) {
            Some(rule) => *rule,
            None => match kind {
                IdKind::UserId => KindRule {
                    limit: 1,
                    window_days: None,
                    priority: 100,
                },
                IdKind::Email => KindRule {
                    limit: 5,
                    window_days: Some(7),
                    priority: 50,
                },
                IdKind::AnonymousId => KindRule {
                    limit: 5,
                    window_days: Some(7),
                    priority: 10,
                },
                IdKind::Other(_) => self.other,
            },
        };
        if *kind == IdKind::UserId {
            rule.limit = 1;
            rule.window_days = None;
        }
        // A limit of 0 would leave events with nothing to attribute them by.
        rule.limit = rule.limit.max(1);
        rule
    }

    /// The priority of `kind` (higher is kept first).
    pub fn priority(&self, kind: &IdKind) -> u32 {
        self.rule(kind).priority
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_rank_user_id_then_email_then_the_rest() {
        let c = IdentityConfig::default();
        let phone = IdKind::Other("phone".into());
        assert!(c.priority(&IdKind::UserId) > c.priority(&IdKind::Email));
        assert!(c.priority(&IdKind::Email) > c.priority(&phone));
        assert!(c.priority(&phone) > c.priority(&IdKind::AnonymousId));
        assert_eq!(c.rule(&IdKind::UserId).limit, 1);
        assert_eq!(c.rule(&IdKind::AnonymousId).window(), Some(7 * DAY));
    }

    #[test]
    fn user_id_limit_stays_one_whatever_is_configured() {
        let mut c = IdentityConfig::default();
        c.kinds.insert(
            "user_id".into(),
            KindRule {
                limit: 3,
                window_days: Some(1),
                priority: 7,
            },
        );
        let rule = c.rule(&IdKind::UserId);
        assert_eq!((rule.limit, rule.window_days, rule.priority), (1, None, 7));
    }

    #[test]
    fn config_round_trips_and_missing_fields_take_defaults() {
        let c: IdentityConfig = serde_json::from_value(serde_json::json!({
            "junk": ["n/a"],
            "kinds": {"phone": {"limit": 2}},
        }))
        .unwrap();
        assert_eq!(c.junk, ["n/a"]);
        assert_eq!(c.fields, IdentityConfig::default().fields);
        let phone = c.rule(&IdKind::Other("phone".into()));
        assert_eq!(
            (phone.limit, phone.window_days, phone.priority),
            (2, Some(7), 20)
        );
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<IdentityConfig>(&text).unwrap(), c);
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let err = serde_json::from_str::<IdentityConfig>(r#"{"limits": {}}"#).unwrap_err();
        assert!(err.to_string().contains("limits"), "{err}");
    }
}

//! Sessions: a visitor's run of activity, ended by 30 minutes idle or a new campaign.
//!
//! The SDK keeps the current session in storage and stamps every event with its id and
//! the visitor's session count, so the worker can count sessions and tell landing pages
//! without replaying history. A session starts anew after [`IDLE`] without events, or
//! when a visit arrives with a campaign different from the session's (a second ad click
//! is a second visit). The stored form is a short dotted text, read back tolerantly.
//!
//! The module is free of serde and of `core::fmt`, so the browser SDK can use it.

use alloc::borrow::ToOwned;
use alloc::string::String;

use crate::text::{decimal, parse_decimal, push_decimal, split_once};
use crate::time::{Millis, MINUTE};

/// Idle time after which the next event starts a new session.
pub const IDLE: Millis = 30 * MINUTE;

/// The current session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// When the session started; its decimal text is the session id.
    pub start: Millis,
    /// How many sessions this browser has had, this one included.
    pub count: u64,
    /// When the last event of the session happened.
    pub last: Millis,
    /// The [`crate::campaign::Campaign::key`] the session started with, empty without one.
    pub campaign: String,
}

impl Session {
    /// The session that an event at `now` belongs to, and whether it is a new one.
    ///
    /// `campaign` is the key of the campaign the current page came with, if any: a
    /// campaign different from the session's starts a new session, while a page without
    /// one continues the session.
    ///
    /// ```
    /// use weft_core::session::{Session, IDLE};
    /// let (first, started) = Session::advance(None, 1_000, None);
    /// assert!(started);
    /// let (same, started) = Session::advance(Some(first.clone()), 1_000 + IDLE, None);
    /// assert!(!started);
    /// let (next, started) = Session::advance(Some(same), 2_001 + 2 * IDLE, None);
    /// assert!(started);
    /// assert_eq!(next.count, 2);
    /// ```
    pub fn advance(prior: Option<Session>, now: Millis, campaign: Option<&str>) -> (Session, bool) {
        let campaign = campaign.filter(|c| !c.is_empty());
        if let Some(mut session) = prior {
            let idle = now.saturating_sub(session.last) > IDLE;
            let new_campaign = campaign.is_some_and(|c| c != session.campaign);
            if !idle && !new_campaign {
                session.last = session.last.max(now);
                return (session, false);
            }
            let count = session.count.saturating_add(1);
            return (Session::begin(now, count, campaign), true);
        }
        (Session::begin(now, 1, campaign), true)
    }

    fn begin(now: Millis, count: u64, campaign: Option<&str>) -> Session {
        Session {
            start: now,
            count,
            last: now,
            campaign: campaign.unwrap_or("").to_owned(),
        }
    }

    /// The session id: the start time's decimal digits.
    pub fn id(&self) -> String {
        decimal(self.start)
    }

    /// The stored form, `start.count.last.campaign`.
    ///
    /// ```
    /// use weft_core::session::Session;
    /// let s = Session { start: 5, count: 2, last: 9, campaign: "a|b||".into() };
    /// assert_eq!(s.to_text(), "5.2.9.a|b||");
    /// assert_eq!(Session::parse(&s.to_text()), Some(s));
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = decimal(self.start);
        out.push('.');
        push_decimal(&mut out, i64::try_from(self.count).unwrap_or(i64::MAX));
        out.push('.');
        push_decimal(&mut out, self.last);
        out.push('.');
        out.push_str(&self.campaign);
        out
    }

    /// Reads the stored form back; `None` when it is damaged.
    pub fn parse(text: &str) -> Option<Session> {
        let (start, rest) = split_once(text, b'.')?;
        let (count, rest) = split_once(rest, b'.')?;
        let (last, campaign) = split_once(rest, b'.').unwrap_or((rest, ""));
        let start = parse_decimal(start)?;
        let count = u64::try_from(parse_decimal(count)?).ok()?;
        let last = parse_decimal(last)?;
        let campaign = campaign.to_owned();
        (count > 0).then_some(Session {
            start,
            count,
            last,
            campaign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_after_idle_time_or_on_a_new_campaign() {
        let t0 = 1_700_000_000_000;
        let running = Session {
            start: t0,
            count: 3,
            last: t0,
            campaign: "g|cpc|s|".into(),
        };
        let cases = [
            ("within idle time", IDLE, None, false),
            ("past idle time", IDLE + 1, None, true),
            ("same campaign", 60_000, Some("g|cpc|s|"), false),
            ("new campaign", 60_000, Some("fb|social||"), true),
            ("empty campaign key", 60_000, Some(""), false),
            ("clock went back", -60_000, None, false),
        ];
        for (name, after, campaign, expect_new) in cases {
            let (got, started) = Session::advance(Some(running.clone()), t0 + after, campaign);
            assert_eq!(started, expect_new, "{name}");
            if expect_new {
                assert_eq!((got.count, got.start), (4, t0 + after), "{name}");
            } else {
                assert_eq!((got.count, got.start), (3, t0), "{name}");
                assert_eq!(got.last, t0.max(t0 + after), "{name}");
            }
        }
    }

    #[test]
    fn damaged_stored_sessions_are_ignored() {
        for text in ["", "x", "1.2", "1.0.3.", "a.1.2.", "1.2.b"] {
            assert_eq!(Session::parse(text), None, "{text}");
        }
        let campaign_with_dots = Session::parse("1.2.3.a.b|c").map(|s| s.campaign);
        assert_eq!(campaign_with_dots.as_deref(), Some("a.b|c"));
        let without_campaign = Session::parse("1.2.3").map(|s| (s.last, s.campaign));
        assert_eq!(without_campaign, Some((3, String::new())));
    }
}

//! Touchpoints: how a visitor arrived (channel, campaign, click id, referrer, landing page).
//!
//! A touchpoint is derived from a `page` event's `context.page` and `context.campaign`
//! (the SDK fills both; third-party clients may send only the URL, so the campaign is
//! parsed from the page's URL when absent). The profile keeps the first and the last.

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::time::Millis;

/// Where a visit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    /// When the touch happened.
    pub at: Millis,
    /// `direct`, `organic_search`, `paid_search`, `social`, `paid_social`, `email`,
    /// `referral`, `internal`, ...
    pub channel: String,
    /// `utm_source`, or the referring host's name when there is no campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The click id's parameter name (`gclid`, `fbclid`, ...), when one came with the visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// The referring host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The landing page's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<String>,
}

/// The touchpoint of a `page` or `screen` event, from its campaign and referrer.
///
/// # Limitations
/// Channels are judged from `utm_medium` and the referrer's presence only; a table of
/// known hosts (search engines, social networks) refines this in the referrer module.
pub fn from_event(event: &Event) -> Option<Touchpoint> {
    if !matches!(event.kind, EventKind::Page | EventKind::Screen) {
        return None;
    }
    let campaign = |key: &str| event.context_str(&["campaign", key]).map(str::to_owned);
    let referrer = event
        .context_str(&["page", "referrer"])
        .and_then(|r| r.split("//").nth(1))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(rest).to_owned())
        .filter(|h| !h.is_empty());
    let medium = campaign("medium");
    let channel = match medium.as_deref() {
        Some("cpc" | "ppc" | "paidsearch") => "paid_search",
        Some("email") => "email",
        Some("social") => "social",
        Some(_) => "campaign",
        None if referrer.is_some() => "referral",
        None => "direct",
    };
    Some(Touchpoint {
        at: event.timestamp,
        channel: channel.to_owned(),
        source: campaign("source").or_else(|| referrer.clone()),
        medium,
        campaign: campaign("name"),
        click_id: None,
        referrer,
        landing: event.context_str(&["page", "path"]).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_in_context_makes_a_touch() {
        let mut e = Event::new(EventKind::Page, "m-1", 5);
        e.context.insert(
            "campaign".into(),
            serde_json::json!({"source": "google", "medium": "cpc", "name": "spring"}),
        );
        e.context.insert("page".into(), serde_json::json!({"path": "/"}));
        let touch = from_event(&e).unwrap();
        assert_eq!(touch.medium.as_deref(), Some("cpc"));
        assert_eq!(touch.campaign.as_deref(), Some("spring"));
        assert_eq!(touch.channel, "paid_search");
        assert_eq!(touch.landing.as_deref(), Some("/"));
    }
}

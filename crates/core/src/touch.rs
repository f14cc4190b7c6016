//! Touchpoints: how a visit arrived (channel, campaign, click id, referrer, landing page).
//!
//! A touchpoint is derived from a `page` event's `context.page` and `context.campaign`.
//! The SDK fills both; third-party clients may send only the page's URL or search
//! string, so when `context.campaign` is absent the campaign is parsed from
//! `context.page.search`, then `context.page.url` (and the same fields of
//! `properties`), with the same [`crate::campaign`] code the SDK runs. The channel comes
//! from [`crate::referrer::classify`]. The profile keeps the first and the last.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::campaign::Campaign;
use crate::event::{Event, EventKind};
use crate::referrer::{self, Channel};
use crate::time::Millis;
use crate::url;

/// Where a visit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    /// When the touch happened.
    pub at: Millis,
    /// A [`Channel`] name: `direct`, `organic_search`, `paid_search`, `social`,
    /// `paid_social`, `email`, `display`, `affiliate`, `campaign` or `referral`
    /// (`internal` visits make no touchpoint).
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
/// An explicit `context.campaign` wins; without one the campaign is read from the page's
/// search string or URL (field report `utm-from-explicit-page-search`). A page reached
/// from another page of the same site without a campaign is no new touch: `None`.
///
/// # Limitations
/// "Same site" is judged by [`referrer::site`]'s guess of the registrable domain, which
/// ships no public-suffix list.
pub fn from_event(event: &Event) -> Option<Touchpoint> {
    if !matches!(event.kind, EventKind::Page | EventKind::Screen) {
        return None;
    }
    // `context.page` is looked up once, not once per field.
    let context_page = event.context.get("page").and_then(Value::as_object);
    let page = |key: &str| page_field(event, context_page, key);
    let page_url = page("url");
    let campaign = match event.context.get("campaign").and_then(Value::as_object) {
        Some(fields) if !fields.is_empty() => campaign_from_fields(fields),
        _ => page("search")
            .map(Campaign::from_query)
            .filter(|c| !c.is_empty())
            .or_else(|| page_url.map(|u| Campaign::from_query(url::split(u).query)))
            .unwrap_or_default(),
    };
    let page_host = page_url.and_then(url::host).unwrap_or_default();
    let referrer_url = page("referrer");
    let classified = referrer::classify(&campaign, referrer_url, &page_host);
    if classified.channel == Channel::Internal {
        return None;
    }
    let landing = page("path")
        .or_else(|| page_url.map(|u| url::split(u).path))
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Some(Touchpoint {
        at: event.timestamp,
        channel: classified.channel.as_str().to_owned(),
        source: classified.source,
        medium: campaign.medium,
        campaign: campaign.name,
        click_id: campaign.click_id.map(|c| c.param.to_owned()),
        referrer: referrer_url.and_then(url::host),
        landing,
    })
}

/// Writes into `key` everything [`from_event`] reads of `event` but its time: two events
/// with equal keys get equal touchpoints, `at` aside. `false`, with nothing written, for
/// an event that makes no touchpoint whatever its fields (neither page nor screen).
///
/// Texts are ended by a 0xFF byte, which UTF-8 never holds, so no two different inputs
/// write the same key.
pub fn write_inputs(event: &Event, key: &mut Vec<u8>) -> bool {
    const END: u8 = 0xff;
    const CAMPAIGN: u8 = 0xfe;
    if !matches!(event.kind, EventKind::Page | EventKind::Screen) {
        return false;
    }
    let mut put = |text: &str| {
        key.extend_from_slice(text.as_bytes());
        key.push(END);
    };
    // One walk over `context.page` finds the four fields, where four lookups would each
    // compare keys.
    let mut fields: [Option<&str>; 4] = [None; 4];
    if let Some(page) = event.context.get("page").and_then(Value::as_object) {
        for (name, value) in page {
            let i = match name.as_str() {
                "url" => 0,
                "search" => 1,
                "referrer" => 2,
                "path" => 3,
                _ => continue,
            };
            fields[i] = value.as_str();
        }
    }
    for (field, name) in fields.iter_mut().zip(PAGE_FIELDS) {
        // As `page_field` reads: `properties` only when `context.page` has no text.
        if field.is_none() && !event.properties.is_empty() {
            *field = event.properties.get(name).and_then(Value::as_str);
        }
        // No field and an empty one read alike, and so they are keyed alike.
        put(field.unwrap_or_default());
    }
    if let Some(fields) = event.context.get("campaign").and_then(Value::as_object) {
        if !fields.is_empty() {
            key.push(CAMPAIGN);
            for (k, v) in fields {
                if let Some(v) = v.as_str() {
                    key.extend_from_slice(k.as_bytes());
                    key.push(END);
                    key.extend_from_slice(v.as_bytes());
                    key.push(END);
                }
            }
        }
    }
    true
}

/// The page fields [`write_inputs`] keys, in its order.
const PAGE_FIELDS: [&str; 4] = ["url", "search", "referrer", "path"];

/// A page field from `context.page`, else from `properties`; `None` when empty.
fn page_field<'e>(
    event: &'e Event,
    context_page: Option<&'e Map<String, Value>>,
    key: &str,
) -> Option<&'e str> {
    context_page
        .and_then(|p| p.get(key))
        .and_then(Value::as_str)
        .or_else(|| match event.properties.is_empty() {
            true => None,
            false => event.properties.get(key).and_then(Value::as_str),
        })
        .filter(|v| !v.is_empty())
}

fn campaign_from_fields(fields: &Map<String, Value>) -> Campaign {
    Campaign::from_fields(
        fields
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page_event(context: Value, properties: Value) -> Event {
        let mut e = Event::new(EventKind::Page, "m-1", 5);
        e.context = context.as_object().cloned().unwrap_or_default();
        e.properties = properties.as_object().cloned().unwrap_or_default();
        e
    }

    #[test]
    fn campaign_in_context_makes_a_touch() {
        let e = page_event(
            json!({"campaign": {"source": "google", "medium": "cpc", "name": "spring"},
                   "page": {"path": "/"}}),
            json!({}),
        );
        let touch = from_event(&e).unwrap();
        assert_eq!(touch.medium.as_deref(), Some("cpc"));
        assert_eq!(touch.campaign.as_deref(), Some("spring"));
        assert_eq!(touch.channel, "paid_search");
        assert_eq!(touch.source.as_deref(), Some("google"));
        assert_eq!(touch.landing.as_deref(), Some("/"));
    }

    #[test]
    fn utm_from_explicit_page_search() {
        let url = "https://shop.example.com/landing?utm_source=newsletter&utm_content=hero";
        let search = "?utm_source=newsletter&utm_content=hero";
        let cases = [
            (
                "context.page.search",
                json!({"page": {"search": search}}),
                json!({}),
            ),
            ("context.page.url", json!({"page": {"url": url}}), json!({})),
            (
                "properties",
                json!({}),
                json!({"url": url, "search": search}),
            ),
        ];
        for (name, context, properties) in cases {
            let touch = from_event(&page_event(context, properties)).unwrap();
            assert_eq!(touch.source.as_deref(), Some("newsletter"), "{name}");
            assert_eq!(touch.channel, "campaign", "{name}");
        }

        let explicit = page_event(
            json!({"campaign": {"source": "explicit", "medium": "email"},
                   "page": {"search": search}}),
            json!({}),
        );
        let touch = from_event(&explicit).unwrap();
        assert_eq!(touch.source.as_deref(), Some("explicit"));
        assert_eq!(touch.channel, "email");
    }

    #[test]
    fn channels_come_from_the_referrer_table() {
        let cases = [
            (
                json!({"page": {"url": "https://shop.example.com/"}}),
                Some("direct"),
            ),
            (
                json!({"page": {"url": "https://shop.example.com/",
                                "referrer": "https://www.google.fr/"}}),
                Some("organic_search"),
            ),
            (
                json!({"page": {"url": "https://shop.example.com/?gclid=x",
                                "referrer": "https://www.google.fr/"}}),
                Some("paid_search"),
            ),
            (
                json!({"page": {"url": "https://shop.example.com/p",
                                "referrer": "https://www.example.com/"}}),
                None,
            ),
        ];
        for (context, channel) in cases {
            let got = from_event(&page_event(context.clone(), json!({})));
            assert_eq!(got.map(|t| t.channel).as_deref(), channel, "{context}");
        }
    }

    #[test]
    fn click_ids_referrers_and_landing_pages_are_kept() {
        let e = page_event(
            json!({"page": {"url": "https://shop.example.com/spring?fbclid=IwAR",
                            "referrer": "https://l.facebook.com/l.php?u=x"}}),
            json!({}),
        );
        let touch = from_event(&e).unwrap();
        assert_eq!(touch.click_id.as_deref(), Some("fbclid"));
        assert_eq!(touch.referrer.as_deref(), Some("l.facebook.com"));
        assert_eq!(touch.landing.as_deref(), Some("/spring"));
        assert_eq!(touch.channel, "social");
    }

    #[test]
    fn touch_inputs_differ_whenever_the_touchpoint_can() {
        let key = |context: Value, properties: Value| {
            let mut key = Vec::new();
            assert!(write_inputs(&page_event(context, properties), &mut key));
            key
        };
        let base = key(json!({"page": {"path": "/a"}}), json!({}));
        let cases = [
            ("another path", json!({"page": {"path": "/b"}}), json!({})),
            (
                "a referrer",
                json!({"page": {"path": "/a", "referrer": "https://x.io/"}}),
                json!({}),
            ),
            (
                "a url",
                json!({"page": {"path": "/a", "url": "https://s.io/a?gclid=1"}}),
                json!({}),
            ),
            (
                "a search",
                json!({"page": {"path": "/a", "search": "?utm_source=n"}}),
                json!({}),
            ),
            (
                "a campaign",
                json!({"page": {"path": "/a"}, "campaign": {"source": "n"}}),
                json!({}),
            ),
            (
                "a campaign of no strings",
                json!({"page": {"path": "/a"}, "campaign": {"n": 1}}),
                json!({}),
            ),
            (
                "a referrer in properties",
                json!({"page": {"path": "/a"}}),
                json!({"referrer": "https://x.io/"}),
            ),
            (
                "a url in properties behind a number",
                json!({"page": {"path": "/a", "url": 5}}),
                json!({"url": "https://s.io/a?gclid=1"}),
            ),
        ];
        for (name, context, properties) in cases {
            assert_ne!(key(context, properties), base, "{name}");
        }

        let mut later = page_event(json!({"page": {"path": "/a"}}), json!({}));
        later.timestamp = 99;
        later.message_id = "m-2".into();
        let mut same = Vec::new();
        assert!(write_inputs(&later, &mut same));
        assert_eq!(same, base, "time and message id are not inputs");
        later.kind = EventKind::Track;
        assert!(!write_inputs(&later, &mut Vec::new()));
    }

    #[test]
    fn only_page_and_screen_events_make_touches() {
        let mut e = page_event(json!({"page": {"path": "/"}}), json!({}));
        e.kind = EventKind::Track;
        assert_eq!(from_event(&e), None);
    }
}

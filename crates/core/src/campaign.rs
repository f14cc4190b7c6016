//! Campaign parameters (`utm_*`, `utm_id`) and ad-platform click ids.
//!
//! A visit's campaign comes from its landing URL's query string. The SDK reads it to
//! fill `context.campaign`; the worker reads it again from `context.page` when a
//! third-party client sent no `context.campaign`, so both sides share this code. Names
//! follow the Segment spec: `utm_campaign` is `name`, every other `utm_<x>` is `<x>`,
//! and a click id keeps its parameter name (`gclid`, `fbclid`, ...).
//!
//! The module is free of serde and of `core::fmt`, so the browser SDK can use it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::url;

/// Click-id parameters that ad platforms append to landing URLs, most common first.
pub const CLICK_IDS: &[&str] = &[
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "twclid",
    "yclid",
    "rdt_cid",
    "sccid",
    "epik",
    "irclickid",
    "gclsrc",
    "_kx",
];

/// A click id that came with the visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickId {
    /// The parameter's name, one of [`CLICK_IDS`].
    pub param: &'static str,
    /// The id as the platform sent it.
    pub value: String,
}

/// The campaign a visit came with.
///
/// ```
/// use weft_core::campaign::Campaign;
/// let c = Campaign::from_query("?utm_source=google&utm_medium=cpc&utm_campaign=spring+sale");
/// assert_eq!(c.source.as_deref(), Some("google"));
/// assert_eq!(c.name.as_deref(), Some("spring sale"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    /// `utm_source`: who sent the visit (`google`, `newsletter`).
    pub source: Option<String>,
    /// `utm_medium`: how (`cpc`, `email`, `social`).
    pub medium: Option<String>,
    /// `utm_campaign`: the campaign's name.
    pub name: Option<String>,
    /// `utm_term`: the paid keyword.
    pub term: Option<String>,
    /// `utm_content`: which ad or link.
    pub content: Option<String>,
    /// `utm_id`: the campaign's id.
    pub id: Option<String>,
    /// Every other `utm_<x>` parameter, as `(x, value)`, in order.
    pub other: Vec<(String, String)>,
    /// The first click id found.
    pub click_id: Option<ClickId>,
}

impl Campaign {
    /// Reads a query string (with or without its leading `?`).
    ///
    /// Names are matched without regard to ASCII case (`UTM_Source` counts), values
    /// are trimmed of spaces and ASCII control characters ([`url::trim`]), empty values
    /// are ignored and the first value of a repeated name wins.
    pub fn from_query(query: &str) -> Campaign {
        let mut campaign = Campaign::default();
        url::for_each_pair(query, |mut key, value| {
            key.make_ascii_lowercase();
            match key.strip_prefix("utm_") {
                Some(field) => campaign.set(field, &value),
                None => campaign.set_click_id(&key, &value),
            }
        });
        campaign
    }

    /// Reads a campaign from the fields of a `context.campaign` object (`source`,
    /// `medium`, `name`, `term`, `content`, `id`, click-id names, anything else kept in
    /// [`Campaign::other`]).
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Campaign {
        let mut campaign = Campaign::default();
        for (key, value) in fields {
            let key = key.to_ascii_lowercase();
            if CLICK_IDS.contains(&key.as_str()) {
                campaign.set_click_id(&key, value);
            } else {
                campaign.set(key.strip_prefix("utm_").unwrap_or(&key), value);
            }
        }
        campaign
    }

    fn set(&mut self, field: &str, value: &str) {
        let value = url::trim(value);
        if value.is_empty() || field.is_empty() {
            return;
        }
        let slot = match field {
            "source" => &mut self.source,
            "medium" => &mut self.medium,
            "campaign" | "name" => &mut self.name,
            "term" => &mut self.term,
            "content" => &mut self.content,
            "id" => &mut self.id,
            _ => {
                if !self.other.iter().any(|(k, _)| k == field) {
                    self.other.push((field.to_owned(), value.to_owned()));
                }
                return;
            }
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }

    fn set_click_id(&mut self, key: &str, value: &str) {
        let value = url::trim(value);
        if self.click_id.is_some() || value.is_empty() {
            return;
        }
        if let Some(param) = CLICK_IDS.iter().find(|p| **p == key) {
            self.click_id = Some(ClickId {
                param,
                value: value.to_owned(),
            });
        }
    }

    /// True when no parameter and no click id was found.
    pub fn is_empty(&self) -> bool {
        let named = [
            &self.source,
            &self.medium,
            &self.name,
            &self.term,
            &self.content,
            &self.id,
        ];
        named.iter().all(|v| v.is_none()) && self.other.is_empty() && self.click_id.is_none()
    }

    /// The campaign as `context.campaign` fields, in a fixed order: `source`, `medium`,
    /// `name`, `term`, `content`, `id`, the other `utm_*` names, then the click id.
    ///
    /// ```
    /// let c = weft_core::campaign::Campaign::from_query("utm_source=a&gclid=x");
    /// assert_eq!(c.fields(), [("source", "a"), ("gclid", "x")]);
    /// ```
    pub fn fields(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        self.for_each_field(|name, value| out.push((name, value)));
        out
    }

    /// Calls `visit` with each of [`Campaign::fields`], in the same order, without
    /// collecting them.
    pub fn for_each_field<'a>(&'a self, mut visit: impl FnMut(&'a str, &'a str)) {
        let named = [
            ("source", &self.source),
            ("medium", &self.medium),
            ("name", &self.name),
            ("term", &self.term),
            ("content", &self.content),
            ("id", &self.id),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                visit(name, value);
            }
        }
        for (name, value) in &self.other {
            visit(name, value);
        }
        if let Some(click) = &self.click_id {
            visit(click.param, &click.value);
        }
    }

    /// A key that changes when the visit comes from a different campaign: source,
    /// medium, name and click id joined. Sessions start anew when it changes.
    ///
    /// ```
    /// let c = weft_core::campaign::Campaign::from_query("utm_source=a&utm_medium=b");
    /// assert_eq!(c.key(), "a|b||");
    /// ```
    pub fn key(&self) -> String {
        let mut key = String::new();
        let parts = [&self.source, &self.medium, &self.name];
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push('|');
            }
            key.push_str(part.as_deref().unwrap_or(""));
        }
        key.push('|');
        if let Some(click) = &self.click_id {
            key.push_str(&click.value);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_strings_become_campaign_fields() {
        let cases: [(&str, &[(&str, &str)]); 9] = [
            ("", &[]),
            ("?q=shoes", &[]),
            (
                "?utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_term=red+shoes\
                 &utm_content=ad%201&utm_id=42",
                &[
                    ("source", "google"),
                    ("medium", "cpc"),
                    ("name", "spring"),
                    ("term", "red shoes"),
                    ("content", "ad 1"),
                    ("id", "42"),
                ],
            ),
            ("utm_source=a&utm_source=b", &[("source", "a")]),
            (
                "UTM_SOURCE=News&Utm_Medium=Email",
                &[("source", "News"), ("medium", "Email")],
            ),
            ("utm_source=&utm_medium=%20", &[]),
            (
                "utm_source_platform=dv360&utm_x=1",
                &[("source_platform", "dv360"), ("x", "1")],
            ),
            ("gclid=abc&fbclid=def", &[("gclid", "abc")]),
            (
                "utm_source=fb&fbclid=IwAR1",
                &[("source", "fb"), ("fbclid", "IwAR1")],
            ),
        ];
        for (query, expected) in cases {
            let got = Campaign::from_query(query);
            let got: Vec<(String, String)> = got
                .fields()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(got, owned(expected), "{query}");
        }
    }

    #[test]
    fn every_listed_click_id_is_recognised() {
        for param in CLICK_IDS {
            let query = [*param, "=v"].concat();
            let campaign = Campaign::from_query(&query);
            assert_eq!(campaign.click_id.map(|c| c.param), Some(*param), "{param}");
        }
    }

    #[test]
    fn context_campaign_fields_read_back_the_same() {
        let campaign = Campaign::from_fields([
            ("source", "newsletter"),
            ("name", "may"),
            ("utm_medium", "email"),
            ("msclkid", "m1"),
            ("custom", "yes"),
        ]);
        assert_eq!(campaign.source.as_deref(), Some("newsletter"));
        assert_eq!(campaign.medium.as_deref(), Some("email"));
        assert_eq!(campaign.name.as_deref(), Some("may"));
        assert_eq!(campaign.click_id.as_ref().map(|c| c.param), Some("msclkid"));
        assert_eq!(campaign.other, owned(&[("custom", "yes")]));
        assert!(!campaign.is_empty());
        assert!(Campaign::from_fields([("source", " ")]).is_empty());
    }

    #[test]
    fn the_key_changes_with_source_medium_name_or_click_id() {
        let base = Campaign::from_query("utm_source=a&utm_medium=b&utm_campaign=c").key();
        for other in [
            "utm_source=x&utm_medium=b&utm_campaign=c",
            "utm_source=a&gclid=1",
        ] {
            assert_ne!(Campaign::from_query(other).key(), base, "{other}");
        }
        let same = "utm_source=a&utm_medium=b&utm_campaign=c&utm_content=other";
        assert_eq!(Campaign::from_query(same).key(), base);
    }
}

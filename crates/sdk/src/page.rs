//! `context.page`: the page an event happened on, and the campaign it came with.
//!
//! The defaults come from `location` and `document`; a `page()` call may override them
//! through its properties (`url`, `path`, `search`, `referrer`, `title`), as single-page
//! apps do, and `options.context.page` overrides both. When the URL is overridden
//! without a search string, the search and path follow the new URL, so the campaign is
//! read from the page the event names, not from the live location (field report
//! `utm-from-explicit-page-search`). Plain Rust, tested natively.

use weft_core::campaign::Campaign;
use weft_core::url;

/// The fields of `context.page`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The full URL, without its fragment.
    pub url: String,
    /// The path.
    pub path: String,
    /// The query string with its `?`, or empty.
    pub search: String,
    /// The referring URL, or empty.
    pub referrer: String,
    /// The document's title.
    pub title: String,
}

/// The names of [`Page`]'s fields, in the order [`Page::fields`] gives them.
pub const FIELDS: [&str; 5] = ["url", "path", "search", "referrer", "title"];

impl Page {
    /// The page as the browser sees it: `href` (the fragment is dropped), referrer, title.
    pub fn from_location(href: &str, referrer: &str, title: &str) -> Page {
        let url = href.split('#').next().unwrap_or(href);
        let parts = url::split(url);
        Page {
            url: url.to_owned(),
            path: parts.path.to_owned(),
            search: search_of(parts.query),
            referrer: referrer.to_owned(),
            title: title.to_owned(),
        }
    }

    /// Applies overrides (`(field, value)` pairs naming [`FIELDS`]); a new `url` without
    /// a new `search` or `path` carries its own.
    pub fn overridden<'a>(
        mut self,
        overrides: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Page {
        let (mut new_search, mut new_path, mut new_url) = (false, false, false);
        for (field, value) in overrides {
            match field {
                "url" => {
                    self.url = value;
                    new_url = true;
                }
                "path" => {
                    self.path = value;
                    new_path = true;
                }
                "search" => {
                    self.search = value;
                    new_search = true;
                }
                "referrer" => self.referrer = value,
                "title" => self.title = value,
                _ => {}
            }
        }
        if new_url {
            let parts = url::split(&self.url);
            if !new_search {
                self.search = search_of(parts.query);
            }
            if !new_path && !parts.path.is_empty() {
                self.path = parts.path.to_owned();
            }
        }
        self
    }

    /// The fields as `(name, value)` pairs, in [`FIELDS`] order.
    pub fn fields(&self) -> [(&'static str, &str); 5] {
        [
            ("url", &self.url),
            ("path", &self.path),
            ("search", &self.search),
            ("referrer", &self.referrer),
            ("title", &self.title),
        ]
    }

    /// The campaign in the page's search string, else in its URL's query.
    pub fn campaign(&self) -> Campaign {
        let from_search = Campaign::from_query(&self.search);
        if from_search.is_empty() {
            Campaign::from_query(url::split(&self.url).query)
        } else {
            from_search
        }
    }
}

fn search_of(query: &str) -> String {
    if query.is_empty() {
        String::new()
    } else {
        let mut search = String::with_capacity(query.len() + 1);
        search.push('?');
        search.push_str(query);
        search
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_gives_the_defaults() {
        let page = Page::from_location("https://shop.example.com/a?utm_source=x#top", "r", "T");
        assert_eq!(page.url, "https://shop.example.com/a?utm_source=x");
        assert_eq!(page.path, "/a");
        assert_eq!(page.search, "?utm_source=x");
        assert_eq!(page.campaign().source.as_deref(), Some("x"));
    }

    #[test]
    fn utm_from_explicit_page_search() {
        let live = Page::from_location("https://shop.example.com/app", "", "App");
        let landing = "https://shop.example.com/landing?utm_source=newsletter&utm_content=hero";
        let cases = [
            (
                "url and search",
                vec![
                    ("url", landing.to_owned()),
                    (
                        "search",
                        "?utm_source=newsletter&utm_content=hero".to_owned(),
                    ),
                ],
            ),
            ("url only", vec![("url", landing.to_owned())]),
            (
                "search only",
                vec![(
                    "search",
                    "?utm_source=newsletter&utm_content=hero".to_owned(),
                )],
            ),
        ];
        for (name, overrides) in cases {
            let page = live.clone().overridden(overrides);
            let campaign = page.campaign();
            assert_eq!(
                campaign.fields(),
                [("source", "newsletter"), ("content", "hero")],
                "{name}"
            );
        }
        let moved = live.overridden([("url", landing.to_owned())]);
        assert_eq!(moved.path, "/landing");
    }

    #[test]
    fn an_overridden_url_without_a_query_clears_the_live_search() {
        let live = Page::from_location("https://a.example/x?utm_source=old", "", "");
        let page = live.overridden([("url", "https://a.example/y".to_owned())]);
        assert_eq!(page.search, "");
        assert!(page.campaign().is_empty());
    }
}

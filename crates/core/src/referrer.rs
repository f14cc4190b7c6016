//! Channels: how a visit arrived, judged from its campaign and its referrer.
//!
//! A visit's channel (direct, organic search, paid search, social, email, referral,
//! internal, ...) is decided from the campaign first (`utm_medium`, then click ids),
//! then from the referrer's host, looked up in a table of known search engines, social
//! networks and webmail hosts. The SDK and the worker both classify with this code, so
//! a touchpoint means the same thing wherever it was computed.
//!
//! The module is free of serde and of `core::fmt`, so the browser SDK can use it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::campaign::Campaign;
use crate::url;

/// How a visit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// No referrer and no campaign: typed, bookmarked, or the referrer was stripped.
    Direct,
    /// From another page of the same site.
    Internal,
    /// From a search engine's results, unpaid.
    OrganicSearch,
    /// A search ad (`utm_medium=cpc`, `gclid`, `msclkid`, ...).
    PaidSearch,
    /// From a social network, unpaid.
    Social,
    /// A social network's ad (`utm_medium=paid_social`, `ttclid`, `li_fat_id`, ...).
    PaidSocial,
    /// From an email (`utm_medium=email`, or a webmail host).
    Email,
    /// A display ad (`utm_medium=display`, `dclid`).
    Display,
    /// An affiliate link (`utm_medium=affiliate`).
    Affiliate,
    /// A campaign whose medium is none of the above.
    Campaign,
    /// From any other site.
    Referral,
}

impl Channel {
    /// The channel's name in touchpoints and segment rules (`organic_search`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::Internal => "internal",
            Channel::OrganicSearch => "organic_search",
            Channel::PaidSearch => "paid_search",
            Channel::Social => "social",
            Channel::PaidSocial => "paid_social",
            Channel::Email => "email",
            Channel::Display => "display",
            Channel::Affiliate => "affiliate",
            Channel::Campaign => "campaign",
            Channel::Referral => "referral",
        }
    }
}

/// What kind of site a known referring host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A search engine.
    Search,
    /// A social network or community.
    Social,
    /// A webmail client.
    Email,
}

// Whole hosts, checked before brands (mail.google.com is email, not search).
const HOSTS: &[(&str, HostKind, &str)] = &[
    ("mail.google.com", HostKind::Email, "gmail"),
    ("outlook.live.com", HostKind::Email, "outlook"),
    ("outlook.office.com", HostKind::Email, "outlook"),
    ("outlook.office365.com", HostKind::Email, "outlook"),
    ("mail.yahoo.com", HostKind::Email, "yahoo_mail"),
    ("mail.aol.com", HostKind::Email, "aol_mail"),
    ("mail.proton.me", HostKind::Email, "proton_mail"),
    ("mail.zoho.com", HostKind::Email, "zoho_mail"),
    ("e.mail.ru", HostKind::Email, "mail_ru"),
    ("search.brave.com", HostKind::Search, "brave"),
    ("search.aol.com", HostKind::Search, "aol"),
    ("news.ycombinator.com", HostKind::Social, "hacker_news"),
    ("mastodon.social", HostKind::Social, "mastodon"),
];

// Brands: the first label of the referring site (`google` in `www.google.co.uk`).
const BRANDS: &[(&str, HostKind)] = &[
    ("google", HostKind::Search),
    ("bing", HostKind::Search),
    ("yahoo", HostKind::Search),
    ("duckduckgo", HostKind::Search),
    ("yandex", HostKind::Search),
    ("baidu", HostKind::Search),
    ("ecosia", HostKind::Search),
    ("qwant", HostKind::Search),
    ("startpage", HostKind::Search),
    ("naver", HostKind::Search),
    ("seznam", HostKind::Search),
    ("ask", HostKind::Search),
    ("sogou", HostKind::Search),
    ("kagi", HostKind::Search),
    ("facebook", HostKind::Social),
    ("fb", HostKind::Social),
    ("instagram", HostKind::Social),
    ("twitter", HostKind::Social),
    ("x", HostKind::Social),
    ("t", HostKind::Social),
    ("linkedin", HostKind::Social),
    ("lnkd", HostKind::Social),
    ("reddit", HostKind::Social),
    ("pinterest", HostKind::Social),
    ("youtube", HostKind::Social),
    ("tiktok", HostKind::Social),
    ("threads", HostKind::Social),
    ("bsky", HostKind::Social),
    ("quora", HostKind::Social),
    ("vk", HostKind::Social),
    ("weibo", HostKind::Social),
    ("tumblr", HostKind::Social),
    ("snapchat", HostKind::Social),
    ("whatsapp", HostKind::Social),
    ("discord", HostKind::Social),
    ("ycombinator", HostKind::Social),
];

// Second-level labels under which a country code's sites are registered (`co.uk`).
const GENERIC_SECOND_LEVELS: &[&str] = &[
    "co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gob", "nic",
];

/// A host's site: its registrable domain, guessed without a public-suffix list.
///
/// ```
/// use weft_core::referrer::site;
/// assert_eq!(site("www.google.co.uk"), "google.co.uk");
/// assert_eq!(site("l.facebook.com"), "facebook.com");
/// ```
///
/// # Limitations
/// The guess keeps two labels, or three under a two-letter country code whose second
/// level is generic (`co.uk`, `com.au`); private suffixes (`github.io`) and rarer
/// public ones are read as one site.
pub fn site(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let labels: Vec<&str> = host.rsplit('.').collect();
    let keep = match labels.as_slice() {
        [tld, second, _, ..] if tld.len() == 2 && GENERIC_SECOND_LEVELS.contains(second) => 3,
        _ => 2,
    };
    if labels.len() <= keep {
        return host;
    }
    let cut: usize = labels[..keep].iter().map(|l| l.len() + 1).sum();
    &host[host.len() + 1 - cut..]
}

/// True when two hosts belong to the same site (`app.example.com`, `www.example.com`).
pub fn is_same_site(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    !a.is_empty() && site(a).eq_ignore_ascii_case(site(b))
}

/// The kind and short name of a known referring host.
///
/// ```
/// use weft_core::referrer::{known_host, HostKind};
/// assert_eq!(known_host("www.google.de"), Some((HostKind::Search, "google")));
/// assert_eq!(known_host("example.org"), None);
/// ```
pub fn known_host(host: &str) -> Option<(HostKind, &'static str)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some((_, kind, name)) = HOSTS.iter().find(|(h, _, _)| *h == host) {
        return Some((*kind, name));
    }
    let brand = site(&host).split('.').next()?;
    BRANDS
        .iter()
        .find(|(b, _)| *b == brand)
        .map(|(b, kind)| (*kind, *b))
}

/// A visit's channel and the name of what sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The channel.
    pub channel: Channel,
    /// The known host's short name (`google`), else the referring host without `www.`;
    /// `None` for direct and internal visits.
    pub source: Option<String>,
}

/// Classifies a visit from its campaign, its referrer URL and the landing page's host.
///
/// The campaign decides first (`utm_medium`, then a click id), then the referrer.
///
/// ```
/// use weft_core::{campaign::Campaign, referrer::{classify, Channel}};
/// let none = Campaign::default();
/// let got = classify(&none, Some("https://www.bing.com/search?q=weft"), "shop.example.com");
/// assert_eq!(got.channel, Channel::OrganicSearch);
/// assert_eq!(got.source.as_deref(), Some("bing"));
/// ```
pub fn classify(campaign: &Campaign, referrer: Option<&str>, page_host: &str) -> Classified {
    let referrer_host = referrer.and_then(url::host);
    let known = referrer_host.as_deref().and_then(known_host);
    let source_is_social = campaign
        .source
        .as_deref()
        .and_then(|s| BRANDS.iter().find(|(b, _)| s.eq_ignore_ascii_case(b)))
        .is_some_and(|(_, kind)| *kind == HostKind::Social)
        || known.is_some_and(|(kind, _)| kind == HostKind::Social);
    let named = |channel| Classified {
        channel,
        source: campaign
            .source
            .clone()
            .or_else(|| known.map(|(_, name)| name.to_owned()))
            .or_else(|| referrer_host.as_deref().map(strip_www)),
    };

    if let Some(medium) = campaign.medium.as_deref() {
        return named(channel_of_medium(medium, source_is_social));
    }
    if let Some(click) = &campaign.click_id {
        return named(match click.param {
            "gclid" | "gbraid" | "wbraid" | "msclkid" | "yclid" | "gclsrc" => Channel::PaidSearch,
            "dclid" => Channel::Display,
            "fbclid" => Channel::Social,
            "irclickid" => Channel::Affiliate,
            _ => Channel::PaidSocial,
        });
    }

    let Some(host) = referrer_host.as_deref() else {
        return match campaign.source {
            Some(_) => named(Channel::Campaign),
            None => Classified {
                channel: Channel::Direct,
                source: None,
            },
        };
    };
    if is_same_site(host, page_host) {
        return Classified {
            channel: Channel::Internal,
            source: None,
        };
    }
    named(match known {
        Some((HostKind::Search, _)) => Channel::OrganicSearch,
        Some((HostKind::Social, _)) => Channel::Social,
        Some((HostKind::Email, _)) => Channel::Email,
        None if campaign.source.is_some() => Channel::Campaign,
        None => Channel::Referral,
    })
}

fn channel_of_medium(medium: &str, source_is_social: bool) -> Channel {
    let medium = medium.to_ascii_lowercase().replace(['-', ' '], "_");
    match medium.as_str() {
        "cpc" | "ppc" | "paidsearch" | "paid_search" | "sem" | "search_ads" | "paid" => {
            if source_is_social {
                Channel::PaidSocial
            } else {
                Channel::PaidSearch
            }
        }
        "paid_social" | "paidsocial" | "social_paid" | "social_ads" => Channel::PaidSocial,
        "email" | "e_mail" | "newsletter" | "mail" => Channel::Email,
        "social" | "social_network" | "social_media" | "sm" => Channel::Social,
        "display" | "banner" | "cpm" | "programmatic" => Channel::Display,
        "affiliate" | "affiliates" | "partner" => Channel::Affiliate,
        "organic" | "seo" => Channel::OrganicSearch,
        "referral" => Channel::Referral,
        _ => Channel::Campaign,
    }
}

fn strip_www(host: &str) -> String {
    host.strip_prefix("www.").unwrap_or(host).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_guessed_without_a_suffix_list() {
        let cases = [
            ("example.com", "example.com"),
            ("www.example.com", "example.com"),
            ("a.b.example.com", "example.com"),
            ("www.google.co.uk", "google.co.uk"),
            ("google.co.uk", "google.co.uk"),
            ("shop.example.com.au", "example.com.au"),
            ("t.co", "t.co"),
            ("localhost", "localhost"),
            ("example.com.", "example.com"),
        ];
        for (host, expected) in cases {
            assert_eq!(site(host), expected, "{host}");
        }
    }

    #[test]
    fn referrers_are_classified_by_the_host_table() {
        let page = "shop.example.com";
        let cases = [
            (None, Channel::Direct, None),
            (Some(""), Channel::Direct, None),
            (
                Some("https://www.google.com/"),
                Channel::OrganicSearch,
                Some("google"),
            ),
            (
                Some("https://www.google.co.uk/search?q=x"),
                Channel::OrganicSearch,
                Some("google"),
            ),
            (
                Some("https://duckduckgo.com/"),
                Channel::OrganicSearch,
                Some("duckduckgo"),
            ),
            (
                Some("https://search.brave.com/search"),
                Channel::OrganicSearch,
                Some("brave"),
            ),
            (
                Some("https://l.facebook.com/l.php"),
                Channel::Social,
                Some("facebook"),
            ),
            (Some("https://t.co/abc"), Channel::Social, Some("t")),
            (
                Some("https://news.ycombinator.com/"),
                Channel::Social,
                Some("hacker_news"),
            ),
            (
                Some("https://mail.google.com/mail/u/0"),
                Channel::Email,
                Some("gmail"),
            ),
            (
                Some("https://blog.other.org/post"),
                Channel::Referral,
                Some("blog.other.org"),
            ),
            (
                Some("https://www.other.org/"),
                Channel::Referral,
                Some("other.org"),
            ),
            (
                Some("https://www.example.com/pricing"),
                Channel::Internal,
                None,
            ),
            (Some("https://shop.example.com/"), Channel::Internal, None),
        ];
        for (referrer, channel, source) in cases {
            let got = classify(&Campaign::default(), referrer, page);
            assert_eq!(got.channel, channel, "{referrer:?}");
            assert_eq!(got.source.as_deref(), source, "{referrer:?}");
        }
    }

    #[test]
    fn the_campaign_decides_before_the_referrer() {
        let google = Some("https://www.google.com/");
        let cases = [
            (
                "utm_source=google&utm_medium=cpc",
                google,
                Channel::PaidSearch,
                "google",
            ),
            (
                "utm_source=facebook&utm_medium=cpc",
                None,
                Channel::PaidSocial,
                "facebook",
            ),
            (
                "utm_source=news&utm_medium=Email",
                None,
                Channel::Email,
                "news",
            ),
            ("utm_source=x&utm_medium=social", None, Channel::Social, "x"),
            (
                "utm_source=dv&utm_medium=display",
                None,
                Channel::Display,
                "dv",
            ),
            (
                "utm_source=partner&utm_medium=affiliate",
                None,
                Channel::Affiliate,
                "partner",
            ),
            (
                "utm_source=x&utm_medium=paid-social",
                None,
                Channel::PaidSocial,
                "x",
            ),
            (
                "utm_source=x&utm_medium=print",
                None,
                Channel::Campaign,
                "x",
            ),
            ("gclid=abc", google, Channel::PaidSearch, "google"),
            ("msclkid=abc", None, Channel::PaidSearch, ""),
            (
                "fbclid=abc",
                Some("https://m.facebook.com/"),
                Channel::Social,
                "facebook",
            ),
            ("ttclid=abc", None, Channel::PaidSocial, ""),
            ("utm_source=qr", None, Channel::Campaign, "qr"),
            ("utm_source=bing", google, Channel::OrganicSearch, "bing"),
        ];
        for (query, referrer, channel, source) in cases {
            let got = classify(&Campaign::from_query(query), referrer, "shop.example.com");
            assert_eq!(got.channel, channel, "{query}");
            assert_eq!(got.source.as_deref().unwrap_or(""), source, "{query}");
        }
    }

    #[test]
    fn channel_names_are_snake_case() {
        assert_eq!(Channel::OrganicSearch.as_str(), "organic_search");
        assert_eq!(Channel::PaidSocial.as_str(), "paid_social");
    }
}

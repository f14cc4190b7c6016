//! Reading a user agent: is it a bot, and what kind of device.
//!
//! Bots are stored but kept out of segments, so a crawler's burst of page views neither
//! creates members nor skews counts. The list covers search and SEO crawlers, headless
//! browsers, performance auditors and uptime monitors; a workspace adds its own patterns
//! in `weft.toml` (`[collector] bot_patterns`).

use alloc::string::String;

/// Lower-case substrings that mark a user agent as automated.
pub const BOT_PATTERNS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headless",
    "lighthouse",
    "pagespeed",
    "ptst",
    "ahrefs",
    "semrush",
    "mj12",
    "dataforseo",
    "screaming frog",
    "sitebulb",
    "pingdom",
    "uptime",
    "statuscake",
    "site24x7",
    "newrelicpinger",
    "datadog synthetics",
    "checkly",
    "monitor",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "cypress",
    "facebookexternalhit",
    "embedly",
    "preview",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww",
    "wget",
    "curl/",
    "httpclient",
    "scrapy",
];

/// Whether a user agent is automated traffic, by the built-in list and extra patterns
/// (matched case-insensitively as substrings).
///
/// ```
/// use weft_core::useragent::is_bot;
/// assert!(is_bot("Mozilla/5.0 (compatible; AhrefsSiteAudit/6.1)", &[]));
/// assert!(!is_bot("Mozilla/5.0 (Windows NT 10.0) Chrome/124.0 Safari/537.36", &[]));
/// ```
pub fn is_bot(user_agent: &str, extra: &[String]) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    if ua.trim().is_empty() {
        return false;
    }
    BOT_PATTERNS.iter().any(|p| ua.contains(p))
        || extra
            .iter()
            .any(|p| !p.is_empty() && ua.contains(&p.to_ascii_lowercase()))
}

/// The device type of a user agent: `bot`, `tablet`, `mobile` or `desktop`.
pub fn device_of(user_agent: &str, extra_bots: &[String]) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    if is_bot(&ua, extra_bots) {
        "bot"
    } else if ua.contains("ipad")
        || ua.contains("tablet")
        || (ua.contains("android") && !ua.contains("mobile"))
    {
        "tablet"
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("ipod") {
        "mobile"
    } else {
        "desktop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ua_flagged() {
        let cases = [
            (
                "Mozilla/5.0 (compatible; AhrefsSiteAudit/6.1; +http://ahrefs.com/robot/)",
                true,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/94.0.4590.2 Safari/537.36 Chrome-Lighthouse",
                true,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/124.0 Safari/537.36",
                false,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0 Safari/537.36",
                true,
            ),
            ("Googlebot/2.1 (+http://www.google.com/bot.html)", true),
            ("Pingdom.com_bot_version_1.4", true),
            ("Mozilla/5.0 (compatible; UptimeRobot/2.0)", true),
            ("curl/8.5.0", true),
            ("", false),
        ];
        for (ua, bot) in cases {
            assert_eq!(is_bot(ua, &[]), bot, "{ua}");
        }
    }

    #[test]
    fn configured_patterns_extend_the_list() {
        let extra = vec!["InternalAuditTool".to_owned()];
        assert!(is_bot("Mozilla/5.0 internalaudittool/1", &extra));
        assert!(!is_bot("Mozilla/5.0 Firefox/120", &extra));
    }

    #[test]
    fn device_types() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
                "mobile",
            ),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-X710) Safari/537.36",
                "tablet",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36",
                "mobile",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
                "desktop",
            ),
            ("Googlebot/2.1", "bot"),
        ];
        for (ua, device) in cases {
            assert_eq!(device_of(ua, &[]), device, "{ua}");
        }
    }
}

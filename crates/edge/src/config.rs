//! The workspace configuration, `weft.toml`, bundled into the worker at build time.
//!
//! Sources and their write keys, allowed origins, collector settings and identity rules
//! live in one file at the repository root; segment definitions kept as files in
//! `segments/` are bundled beside it (see `build.rs`). The file is parsed once per
//! isolate and kept.

use std::sync::OnceLock;

use serde::Deserialize;

/// The text of `weft.toml` as it was when the worker was built.
pub const WEFT_TOML: &str = include_str!("../../../weft.toml");

/// The whole workspace configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The workspace's name and settings.
    #[serde(default)]
    pub workspace: Workspace,
    /// The sources that may send events.
    #[serde(default)]
    pub sources: Vec<Source>,
    /// How events are collected.
    #[serde(default)]
    pub collector: Collector,
    /// How identifiers are taken and stitched.
    #[serde(default)]
    pub identity: weft_core::identity::IdentityConfig,
}

/// The workspace's own settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// A name for logs and the admin API.
    #[serde(default)]
    pub name: String,
}

/// A source of events with its write key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The source's name, stored with each event.
    pub name: String,
    /// The public key the source sends.
    pub write_key: String,
    /// Where its events come from.
    #[serde(default)]
    pub kind: SourceKind,
}

/// Where a source's events come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Straight from visitors' browsers: the request describes the visitor.
    #[default]
    Browser,
    /// A backend sending on visitors' behalf: the request describes the backend.
    Server,
}

/// Collector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Collector {
    /// Origins allowed to read answers (CORS with credentials).
    pub allowed_origins: Vec<String>,
    /// Truncate IP addresses before storing them.
    pub truncate_ip: bool,
    /// Deduplication window in days.
    pub dedupe_days: u32,
    /// How long raw events stay in the Durable Object, in days.
    pub keep_events_days: u32,
    /// Extra user-agent substrings treated as bots.
    pub bot_patterns: Vec<String>,
    /// Domain attribute of the `weft_sid` cookie; empty for the collector's host.
    pub cookie_domain: String,
    /// Events per second one write key may send (see [`crate::ratelimit`]); 0 is no limit.
    pub rate_limit_per_second: u32,
    /// Events one write key may send at once, when it has sent nothing for a while.
    pub rate_limit_burst: u32,
    /// What happens to events from bots (crawlers, headless browsers, monitors).
    pub bots: BotPolicy,
}

/// What the collector does with bot events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BotPolicy {
    /// Store and archive them (deduplicated, counted) but stitch them into no profile, so
    /// they create no profile and join no segment.
    #[default]
    Store,
    /// Stitch them into profiles flagged as bots; such profiles join no segment unless a
    /// segment opts in with `includeBots`.
    Profile,
    /// Acknowledge and count them, store nothing.
    Drop,
}

impl Default for Collector {
    fn default() -> Collector {
        Collector {
            allowed_origins: Vec::new(),
            truncate_ip: false,
            dedupe_days: 7,
            keep_events_days: 30,
            bot_patterns: Vec::new(),
            cookie_domain: String::new(),
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            bots: BotPolicy::Store,
        }
    }
}

impl Config {
    /// Parses a configuration text.
    ///
    /// # Errors
    /// A message naming the fault in the TOML or its fields.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| format!("weft.toml: {e}"))
    }

    /// The bundled configuration, parsed once.
    ///
    /// # Panics
    /// Never at run time: the build checks the bundled file (see `build.rs`) and a test
    /// parses it, so a bad file fails the build, not a request.
    pub fn bundled() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| {
            Config::parse(WEFT_TOML).expect("weft.toml was validated when the worker was built")
        })
    }

    /// The source a write key belongs to.
    pub fn source(&self, write_key: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.write_key == write_key)
    }

    /// Whether an origin may read answers.
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        self.collector.allowed_origins.iter().any(|allowed| {
            if allowed == "*" || allowed == origin {
                return true;
            }
            let Some(suffix) = allowed.strip_prefix("*.") else {
                return false;
            };
            let host = origin.split("://").nth(1).unwrap_or(origin);
            let host = host.split(':').next().unwrap_or(host);
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_config_parses() {
        let config = Config::parse(WEFT_TOML).unwrap();
        assert_eq!(config.source("demo-write-key").unwrap().name, "web");
        assert!(config.source("nope").is_none());
    }

    #[test]
    fn origins_match_exactly_or_by_subdomain() {
        let config = Config::parse(WEFT_TOML).unwrap();
        let cases = [
            ("https://www.example.com", true),
            ("https://evil.example.com", false),
            ("http://app.shop.test:8787", true),
            ("http://shop.test", false),
            ("http://evilshop.test", false),
            ("http://127.0.0.1:8787", true),
        ];
        for (origin, allowed) in cases {
            assert_eq!(config.is_allowed_origin(origin), allowed, "{origin}");
        }
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = Config::parse("[collector]\ntruncate_ipp = true\n").unwrap_err();
        assert!(err.contains("truncate_ipp"), "{err}");
    }
}

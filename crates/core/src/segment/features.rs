//! Features: the per-profile state that segment rules read, kept as time-bucketed counters.
//!
//! Rules are compiled once into a [`FeatureSpec`]: the list of counters they need (which
//! events or page views, which property filters, bucketed by minute, hour, day or not at
//! all). A profile then carries only those counters in its [`Features`], and every event
//! updates them in O(1) with [`Features::observe`], so evaluating a rule never scans the
//! event history. Two profiles that merge add their counters bucket by bucket.
//!
//! [`Features`] is stored as JSON inside the profile, so it is kept compact: a map from a
//! counter's id (16 hex digits, a hash of what it counts) to its non-empty buckets as
//! `[bucket, count]` pairs.
//!
//! ```json
//! {"1f0c5e2a9b3d4e71":[[20089,1],[20091,3]]}
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::event::{Event, EventKind};
use crate::segment::ops::{Op, Subject};
use crate::time::{Millis, DAY, HOUR, MINUTE};

/// How finely a counter keeps time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// One bucket per UTC minute.
    Minute,
    /// One bucket per UTC hour.
    Hour,
    /// One bucket per UTC day.
    Day,
    /// One bucket for all time (a count with no window).
    Lifetime,
}

impl Unit {
    /// The length of one bucket; zero for [`Unit::Lifetime`].
    pub fn millis(self) -> Millis {
        match self {
            Unit::Minute => MINUTE,
            Unit::Hour => HOUR,
            Unit::Day => DAY,
            Unit::Lifetime => 0,
        }
    }

    /// The bucket an instant falls in.
    pub fn bucket(self, at: Millis) -> i64 {
        match self {
            Unit::Lifetime => 0,
            unit => at.div_euclid(unit.millis()),
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Unit::Minute => "m",
            Unit::Hour => "h",
            Unit::Day => "d",
            Unit::Lifetime => "all",
        }
    }
}

/// Which page paths a page-view counter counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The path itself or anything below it: `/pricing` matches `/pricing` and
    /// `/pricing/teams`, not `/pricing-old`. `/` matches every path.
    Prefix(String),
    /// A glob: `*` matches within one path segment, `**` across segments, `?` one character.
    Glob(String),
}

impl PathPattern {
    /// Reads a pattern: a text with `*` or `?` is a glob, anything else a prefix.
    pub fn parse(text: &str) -> PathPattern {
        if text.contains(['*', '?']) {
            PathPattern::Glob(text.to_owned())
        } else {
            PathPattern::Prefix(text.trim_end_matches('/').to_owned())
        }
    }

    /// Whether a page path matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathPattern::Glob(glob) => glob_matches(glob.as_bytes(), path.as_bytes()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            PathPattern::Prefix(p) | PathPattern::Glob(p) => p,
        }
    }
}

/// What a counter counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `track` events with this exact name (case-sensitive).
    Event(String),
    /// `page` events whose path matches.
    Page(PathPattern),
}

/// One counter a rule needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSpec {
    /// A stable id: a hash of the matcher, the filters and the unit. It names the counter
    /// inside [`Features`], so a counter survives redeploys and rule edits that keep it.
    pub id: u64,
    /// The events counted.
    pub matcher: Matcher,
    /// Property filters an event must pass, sorted by property name.
    pub filters: Vec<(String, Op)>,
    /// The bucket size.
    pub unit: Unit,
    /// How many buckets the longest window over this counter spans.
    pub keep: u32,
}

impl CounterSpec {
    /// A counter, its id computed from what it counts.
    pub fn new(
        matcher: Matcher,
        mut filters: Vec<(String, Op)>,
        unit: Unit,
        keep: u32,
    ) -> CounterSpec {
        filters.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name().cmp(b.1.name())));
        let mut key = String::from(unit.tag());
        match &matcher {
            Matcher::Event(name) => key.push_str(&format!("|event|{name}")),
            Matcher::Page(p) => key.push_str(&format!("|page|{}", p.as_str())),
        }
        for (prop, op) in &filters {
            key.push_str(&format!("|{prop}|{}|{}", op.name(), op.operand()));
        }
        CounterSpec {
            id: fnv1a(key.as_bytes()),
            matcher,
            filters,
            unit,
            keep,
        }
    }

    /// Whether an event counts here.
    pub fn counts(&self, event: &Event) -> bool {
        self.counts_at(event, page_path(event))
    }

    /// [`CounterSpec::counts`] with the event's page path already worked out.
    fn counts_at(&self, event: &Event, path: Option<&str>) -> bool {
        let hit = match (&self.matcher, event.kind) {
            (Matcher::Event(name), EventKind::Track) => {
                event.event.as_deref() == Some(name.as_str())
            }
            (Matcher::Page(pattern), EventKind::Page) => path.is_some_and(|p| pattern.matches(p)),
            _ => false,
        };
        hit && self
            .filters
            .iter()
            .all(|(prop, op)| op.holds(property(event, path, prop)))
    }
}

/// The counters that a set of compiled segment rules needs.
///
/// `FeatureSpec::default()` keeps nothing: with it, [`Features::observe`] does nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureSpec {
    counters: Vec<CounterSpec>,
    by_event: HashMap<String, Vec<u32>>,
    pages: Vec<u32>,
}

impl FeatureSpec {
    /// The counters, in the order rules first asked for them.
    pub fn counters(&self) -> &[CounterSpec] {
        &self.counters
    }

    /// Whether no rule needs any counter.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Adds a counter (or widens the one with the same id) and returns its index.
    pub fn add(&mut self, counter: CounterSpec) -> u32 {
        if let Some(i) = self.counters.iter().position(|c| c.id == counter.id) {
            let kept = &mut self.counters[i];
            kept.keep = kept.keep.max(counter.keep);
            return i as u32;
        }
        let index = self.counters.len() as u32;
        match &counter.matcher {
            Matcher::Event(name) => self.by_event.entry(name.clone()).or_default().push(index),
            Matcher::Page(_) => self.pages.push(index),
        }
        self.counters.push(counter);
        index
    }

    /// Calls `f` with the index of every counter the event counts in.
    ///
    /// Only the counters for this event's name (or, for page views, the page counters) are
    /// looked at, so the cost does not grow with the number of other counters.
    pub fn each_match(&self, event: &Event, mut f: impl FnMut(u32)) {
        let candidates: &[u32] = match event.kind {
            EventKind::Track => match event.event.as_deref().and_then(|n| self.by_event.get(n)) {
                Some(list) => list,
                None => return,
            },
            EventKind::Page => &self.pages,
            _ => return,
        };
        let path = if event.kind == EventKind::Page {
            page_path(event)
        } else {
            None
        };
        for &i in candidates {
            if self.counters[i as usize].counts_at(event, path) {
                f(i);
            }
        }
    }
}

/// One counter's buckets: `(bucket, count)` pairs, ascending, no zero counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Series {
    id: u64,
    buckets: Vec<(i64, u32)>,
}

/// The counters one profile keeps for the segment rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    series: Vec<Series>,
}

impl Features {
    /// Counts an event in every counter of the spec that it matches.
    ///
    /// O(1) in the profile's history: one bucket per matching counter is touched, and
    /// buckets that fell out of the longest window are dropped on the way. An event older
    /// than every window (delivered late) is not counted.
    ///
    /// # Limitations
    /// A counter keeps buckets only as far back as the longest window over it. When a
    /// definition later widens that window, events older than the old window are counted
    /// again only by replaying them (the backfill after a definition change does this).
    pub fn observe(&mut self, spec: &FeatureSpec, event: &Event) {
        spec.each_match(event, |i| {
            let counter = &spec.counters[i as usize];
            let bucket = counter.unit.bucket(event.timestamp);
            let series = self.series_mut(counter.id);
            add(&mut series.buckets, bucket, 1, counter.unit, counter.keep);
        });
    }

    /// Adds another profile's counters into this one, bucket by bucket.
    pub fn merge(&mut self, other: &Features) {
        for theirs in &other.series {
            let ours = self.series_mut(theirs.id);
            ours.buckets = merge_buckets(&ours.buckets, &theirs.buckets);
        }
    }

    /// Drops counters the spec no longer lists and buckets no window can reach at `now`.
    ///
    /// Call it after the segment definitions change, before storing the profile.
    pub fn prune(&mut self, spec: &FeatureSpec, now: Millis) {
        self.series.retain_mut(|s| {
            let Some(counter) = spec.counters.iter().find(|c| c.id == s.id) else {
                return false;
            };
            if counter.unit != Unit::Lifetime {
                let oldest = counter.unit.bucket(now) - i64::from(counter.keep);
                s.buckets.retain(|&(b, _)| b > oldest);
            }
            !s.buckets.is_empty()
        });
    }

    /// The buckets of the counter with this id, ascending.
    pub fn buckets(&self, id: u64) -> &[(i64, u32)] {
        match self.series.binary_search_by_key(&id, |s| s.id) {
            Ok(i) => &self.series[i].buckets,
            Err(_) => &[],
        }
    }

    /// The total of a counter over the `window` buckets that end with the one `now` is in
    /// (all buckets for [`Unit::Lifetime`]).
    pub fn count(&self, id: u64, unit: Unit, window: u32, now: Millis) -> u64 {
        let buckets = self.buckets(id);
        if unit == Unit::Lifetime {
            return buckets.iter().map(|&(_, c)| u64::from(c)).sum();
        }
        let oldest = unit.bucket(now) - i64::from(window);
        buckets
            .iter()
            .rev()
            .take_while(|&&(b, _)| b > oldest)
            .map(|&(_, c)| u64::from(c))
            .sum()
    }

    /// How many counters the profile holds.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the profile holds no counter.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn series_mut(&mut self, id: u64) -> &mut Series {
        let i = match self.series.binary_search_by_key(&id, |s| s.id) {
            Ok(i) => i,
            Err(i) => {
                self.series.insert(
                    i,
                    Series {
                        id,
                        buckets: Vec::new(),
                    },
                );
                i
            }
        };
        &mut self.series[i]
    }
}

fn add(buckets: &mut Vec<(i64, u32)>, bucket: i64, n: u32, unit: Unit, keep: u32) {
    let newest = buckets.last().map_or(bucket, |&(b, _)| b.max(bucket));
    let oldest = newest - i64::from(keep);
    if unit != Unit::Lifetime && bucket <= oldest {
        return;
    }
    match buckets.iter().rposition(|&(b, _)| b <= bucket) {
        Some(i) if buckets[i].0 == bucket => buckets[i].1 = buckets[i].1.saturating_add(n),
        Some(i) => buckets.insert(i + 1, (bucket, n)),
        None => buckets.insert(0, (bucket, n)),
    }
    if unit != Unit::Lifetime {
        let stale = buckets.iter().take_while(|&&(b, _)| b <= oldest).count();
        buckets.drain(..stale);
    }
}

fn merge_buckets(a: &[(i64, u32)], b: &[(i64, u32)]) -> Vec<(i64, u32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1.saturating_add(y.1))
            }
            (Some(&x), Some(&y)) if x.0 < y.0 => {
                i += 1;
                x
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.series
                .iter()
                .map(|x| (format!("{:016x}", x.id), &x.buckets)),
        )
    }
}

impl<'de> Deserialize<'de> for Features {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Features, D::Error> {
        let map = BTreeMap::<String, Vec<(i64, u32)>>::deserialize(d)?;
        let mut series = Vec::with_capacity(map.len());
        for (key, mut buckets) in map {
            let id = u64::from_str_radix(&key, 16).map_err(|_| {
                D::Error::custom(format!("feature id is not 16 hex digits (got {key:?})"))
            })?;
            buckets.sort_unstable_by_key(|&(b, _)| b);
            buckets.retain(|&(_, c)| c > 0);
            series.push(Series { id, buckets });
        }
        series.sort_unstable_by_key(|s| s.id);
        Ok(Features { series })
    }
}

/// The path of a page view: `properties.path`, else `context.page.path`, else the path of
/// `properties.url` / `context.page.url`; query and fragment removed.
pub fn page_path(event: &Event) -> Option<&str> {
    let direct = event
        .properties
        .get("path")
        .and_then(Value::as_str)
        .or_else(|| event.context_str(&["page", "path"]));
    let path = match direct {
        Some(p) => p,
        None => {
            let url = event
                .properties
                .get("url")
                .and_then(Value::as_str)
                .or_else(|| event.context_str(&["page", "url"]))?;
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            rest.find('/').map_or("/", |i| &rest[i..])
        }
    };
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

/// An event property for a filter; for page views, `path` is the normalised page path.
fn property<'a>(event: &'a Event, path: Option<&'a str>, name: &str) -> Subject<'a> {
    if event.kind == EventKind::Page && name == "path" {
        return Subject::text(path);
    }
    Subject::json(event.properties.get(name))
}

fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|i| glob_matches(rest, &text[i..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            let segment = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=segment).any(|i| glob_matches(rest, &text[i..]))
        }
        Some(b'?') => {
            text.first().is_some_and(|&c| c != b'/') && glob_matches(&pattern[1..], &text[1..])
        }
        Some(&c) => text.first() == Some(&c) && glob_matches(&pattern[1..], &text[1..]),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(path: &str, at: Millis) -> Event {
        let mut e = Event::new(EventKind::Page, "m", at);
        e.context.insert("page".into(), json!({ "path": path }));
        e
    }

    fn track(name: &str, at: Millis) -> Event {
        let mut e = Event::new(EventKind::Track, "m", at);
        e.event = Some(name.into());
        e
    }

    fn pricing_spec(keep: u32) -> (FeatureSpec, u64) {
        let mut spec = FeatureSpec::default();
        let counter = CounterSpec::new(
            Matcher::Page(PathPattern::parse("/pricing")),
            vec![],
            Unit::Day,
            keep,
        );
        let id = counter.id;
        spec.add(counter);
        (spec, id)
    }

    #[test]
    fn prefixes_match_at_segment_boundaries_and_globs_by_segment() {
        let cases = [
            ("/pricing", "/pricing", true),
            ("/pricing", "/pricing/teams", true),
            ("/pricing/", "/pricing", true),
            ("/pricing", "/pricing-old", false),
            ("/", "/anything/at/all", true),
            ("/pricing*", "/pricing-old", true),
            ("/blog/*/comments", "/blog/hello/comments", true),
            ("/blog/*/comments", "/blog/a/b/comments", false),
            ("/docs/**", "/docs/a/b/c", true),
            ("/docs/**", "/doc", false),
            ("/p?", "/p1", true),
            ("/p?", "/p/", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                PathPattern::parse(pattern).matches(path),
                want,
                "{pattern} on {path}"
            );
        }
    }

    #[test]
    fn page_path_falls_back_to_the_url_and_drops_the_query() {
        let mut e = Event::new(EventKind::Page, "m", 0);
        e.properties.insert(
            "url".into(),
            json!("https://shop.example.com/pricing?utm_medium=cpc"),
        );
        assert_eq!(page_path(&e), Some("/pricing"));
        e.properties.insert("path".into(), json!("/teams#top"));
        assert_eq!(page_path(&e), Some("/teams"));
    }

    #[test]
    fn default_spec_keeps_nothing() {
        let mut f = Features::default();
        f.observe(&FeatureSpec::default(), &page("/pricing", 0));
        assert!(f.is_empty());
        assert_eq!(serde_json::to_string(&f).unwrap(), "{}");
    }

    #[test]
    fn observe_counts_matching_events_in_day_buckets() {
        let (spec, id) = pricing_spec(7);
        let mut f = Features::default();
        for (path, at) in [
            ("/pricing", 0),
            ("/pricing/teams", HOUR),
            ("/blog", HOUR),
            ("/pricing", DAY),
        ] {
            f.observe(&spec, &page(path, at));
        }
        f.observe(&spec, &track("/pricing", DAY));
        assert_eq!(f.buckets(id), &[(0, 2), (1, 1)]);
        assert_eq!(f.count(id, Unit::Day, 7, DAY), 3);
        assert_eq!(f.count(id, Unit::Day, 1, DAY), 1);
    }

    #[test]
    fn buckets_outside_the_longest_window_are_dropped() {
        let (spec, id) = pricing_spec(3);
        let mut f = Features::default();
        for day in 0..6 {
            f.observe(&spec, &page("/pricing", day * DAY));
        }
        assert_eq!(f.buckets(id), &[(3, 1), (4, 1), (5, 1)]);
        f.observe(&spec, &page("/pricing", DAY));
        assert_eq!(
            f.buckets(id).len(),
            3,
            "a late event older than every window is not kept"
        );
        f.observe(&spec, &page("/pricing", 4 * DAY + 5));
        assert_eq!(f.buckets(id), &[(3, 1), (4, 2), (5, 1)]);
    }

    #[test]
    fn property_filters_decide_what_counts() {
        let mut spec = FeatureSpec::default();
        let filters = vec![("total".to_owned(), Op::parse("gte", &json!(100)).unwrap())];
        let counter = CounterSpec::new(
            Matcher::Event("Order Completed".into()),
            filters,
            Unit::Lifetime,
            1,
        );
        let id = counter.id;
        spec.add(counter);
        let mut f = Features::default();
        for total in [50, 100, 250] {
            let mut e = track("Order Completed", 0);
            e.properties.insert("total".into(), json!(total));
            f.observe(&spec, &e);
        }
        f.observe(&spec, &track("Order Completed", 0));
        assert_eq!(f.count(id, Unit::Lifetime, 0, 10 * DAY), 2);
    }

    #[test]
    fn merge_adds_counts_bucket_wise() {
        let (spec, id) = pricing_spec(30);
        let (mut a, mut b) = (Features::default(), Features::default());
        a.observe(&spec, &page("/pricing", 0));
        a.observe(&spec, &page("/pricing", 2 * DAY));
        b.observe(&spec, &page("/pricing", 2 * DAY));
        b.observe(&spec, &page("/pricing", 3 * DAY));
        a.merge(&b);
        assert_eq!(a.buckets(id), &[(0, 1), (2, 2), (3, 1)]);
        let mut empty = Features::default();
        empty.merge(&a);
        assert_eq!(empty, a);
    }

    #[test]
    fn features_round_trip_through_compact_json() {
        let (spec, id) = pricing_spec(30);
        let mut f = Features::default();
        f.observe(&spec, &page("/pricing", 20_089 * DAY));
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, format!("{{\"{id:016x}\":[[20089,1]]}}"));
        let back: Features = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
        let bad = serde_json::from_str::<Features>(r#"{"zz":[[1,1]]}"#).unwrap_err();
        assert!(
            bad.to_string()
                .contains("feature id is not 16 hex digits (got \"zz\")"),
            "{bad}"
        );
    }

    #[test]
    fn prune_drops_unknown_counters_and_stale_buckets() {
        let (spec, id) = pricing_spec(2);
        let mut f: Features = serde_json::from_value(json!({
            format!("{id:016x}"): [[0, 1], [9, 2]],
            "00000000000000ff": [[9, 1]],
        }))
        .unwrap();
        f.prune(&spec, 10 * DAY);
        assert_eq!(f.len(), 1);
        assert_eq!(f.buckets(id), &[(9, 2)]);
    }
}

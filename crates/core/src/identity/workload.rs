//! A deterministic synthetic event stream for measuring the identity graph.
//!
//! The benchmark (`benches/identity.rs`), the property tests and the runtime measurement
//! of the Durable Object all replay the same stream, so their figures can be reproduced:
//! by default 1,000,000 events from 200,000 visitors over 30 days, of whom 20% identify
//! (user id, email and traits), 5% use several devices (each device its own anonymous
//! id, joined when the visitor signs in on it) and 1% send junk user ids (`"undefined"`,
//! `"null"`, ...). Anonymous and message ids are UUID-shaped, as real clients send them.
//! Everything derives from a seed through a counter-based hash, so event `i` can be built
//! on its own without keeping the stream in memory.

use serde_json::{json, Map, Value};

use crate::event::{Event, EventKind};
use crate::time::{Millis, DAY, MINUTE};

/// The shape of a synthetic stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// How many events.
    pub events: usize,
    /// How many visitors they come from.
    pub visitors: u32,
    /// Percent of visitors who identify.
    pub identify_pct: u64,
    /// Percent of visitors with several devices.
    pub multi_device_pct: u64,
    /// Percent of visitors sending junk user ids.
    pub junk_pct: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> WorkloadSpec {
        WorkloadSpec {
            events: 1_000_000,
            visitors: 200_000,
            identify_pct: 20,
            multi_device_pct: 5,
            junk_pct: 1,
            seed: 0x5eed_0f3e_f700,
        }
    }
}

/// The first instant of the stream: 2024-05-01T00:00:00Z.
pub const START: Millis = 1_714_521_600_000;

const JUNK_IDS: [&str; 6] = [
    "undefined",
    "null",
    "None",
    "[object Object]",
    "0",
    "\"null\"",
];
const PATHS: [&str; 8] = [
    "/", "/pricing", "/docs", "/blog/a", "/blog/b", "/signup", "/about", "/p/1",
];
const COUNTRIES: [&str; 6] = ["FR", "US", "DE", "GB", "JP", "BR"];
const PLANS: [&str; 3] = ["free", "pro", "team"];

/// One planned event: who, on which device, when, of which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Planned {
    at: Millis,
    visitor: u32,
    device: u8,
    kind: u8,
    signed_in: bool,
}

/// A synthetic stream, planned in time order.
#[derive(Debug, Clone)]
pub struct Workload {
    spec: WorkloadSpec,
    plan: Vec<Planned>,
}

/// What a visitor is like, derived from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visitor {
    /// Identifies at some point.
    pub identifies: bool,
    /// Number of devices (each its own anonymous id).
    pub devices: u8,
    /// Sends junk user ids.
    pub junk: bool,
}

impl Workload {
    /// Plans the stream of `spec`.
    pub fn new(spec: WorkloadSpec) -> Workload {
        let mut plan = Vec::with_capacity(spec.events + spec.events / 8);
        for v in 0..spec.visitors {
            let visitor = Workload::visitor_of(&spec, v);
            let n = 1 + hash(spec.seed, u64::from(v), 4) % 10;
            let mut at = START + (hash(spec.seed, u64::from(v), 5) % (30 * DAY as u64)) as Millis;
            let mut signed_in = [false; 4];
            for k in 0..n {
                let device =
                    (hash(spec.seed, u64::from(v), 100 + k) % u64::from(visitor.devices)) as u8;
                let first_here = !signed_in[usize::from(device)];
                let kind = if visitor.identifies && first_here && (k > 0 || n == 1) {
                    signed_in[usize::from(device)] = true;
                    2
                } else if hash(spec.seed, u64::from(v), 200 + k) % 10 < 6 {
                    0
                } else {
                    1
                };
                let signed = signed_in[usize::from(device)];
                plan.push(Planned {
                    at,
                    visitor: v,
                    device,
                    kind,
                    signed_in: signed,
                });
                at += (1 + hash(spec.seed, u64::from(v), 300 + k) % 180) as Millis * MINUTE;
            }
        }
        plan.sort_unstable();
        plan.truncate(spec.events);
        plan.shrink_to_fit();
        Workload { spec, plan }
    }

    /// What visitor `v` is like.
    pub fn visitor(&self, v: u32) -> Visitor {
        Workload::visitor_of(&self.spec, v)
    }

    fn visitor_of(spec: &WorkloadSpec, v: u32) -> Visitor {
        let v = u64::from(v);
        let multi = hash(spec.seed, v, 2) % 100 < spec.multi_device_pct;
        Visitor {
            identifies: hash(spec.seed, v, 1) % 100 < spec.identify_pct,
            devices: if multi {
                2 + (hash(spec.seed, v, 6) % 2) as u8
            } else {
                1
            },
            junk: hash(spec.seed, v, 3) % 100 < spec.junk_pct,
        }
    }

    /// How many events the stream holds.
    pub fn len(&self) -> usize {
        self.plan.len()
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    /// The anonymous id of a visitor's device (UUID-shaped).
    pub fn anonymous_id(&self, visitor: u32, device: u8) -> String {
        let v = u64::from(visitor);
        uuid(
            hash(self.spec.seed, v, 10 + u64::from(device)),
            hash(self.spec.seed, v, 20),
        )
    }

    /// Event `i` of the stream.
    ///
    /// # Panics
    /// When `i` is not below [`Workload::len`].
    pub fn event(&self, i: usize) -> Event {
        let p = self.plan[i];
        let seed = self.spec.seed;
        let visitor = self.visitor(p.visitor);
        let kind = match p.kind {
            0 => EventKind::Page,
            1 => EventKind::Track,
            _ => EventKind::Identify,
        };
        let message_id = uuid(hash(seed, i as u64, 30), hash(seed, i as u64, 31));
        let mut e = Event::new(kind, message_id, p.at);
        e.anonymous_id = Some(self.anonymous_id(p.visitor, p.device));
        if p.signed_in {
            e.user_id = Some(format!("user-{}", p.visitor));
        }
        if visitor.junk {
            let pick = hash(seed, i as u64, 32) as usize % JUNK_IDS.len();
            e.user_id = Some(JUNK_IDS[pick].to_owned());
        }
        let v = u64::from(p.visitor);
        match kind {
            EventKind::Page => {
                let path = PATHS[(hash(seed, i as u64, 33) % PATHS.len() as u64) as usize];
                let mut page = Map::new();
                page.insert("path".into(), json!(path));
                if hash(seed, i as u64, 34).is_multiple_of(4) {
                    page.insert("referrer".into(), json!("https://www.google.com/"));
                }
                e.context.insert("page".into(), Value::Object(page));
                if hash(seed, i as u64, 35).is_multiple_of(10) {
                    e.context.insert(
                        "campaign".into(),
                        json!({"source": "newsletter", "medium": "email", "name": "spring"}),
                    );
                }
            }
            EventKind::Track => {
                e.event = Some(
                    if hash(seed, i as u64, 36).is_multiple_of(3) {
                        "Signed Up"
                    } else {
                        "Clicked"
                    }
                    .into(),
                );
                e.properties
                    .insert("value".into(), json!(hash(seed, i as u64, 37) % 100));
            }
            _ => {
                if !visitor.junk {
                    e.traits.insert(
                        "email".into(),
                        json!(format!("user{}@example.com", p.visitor)),
                    );
                }
                e.traits.insert(
                    "plan".into(),
                    json!(PLANS[(hash(seed, v, 38) % 3) as usize]),
                );
                e.traits
                    .insert("name".into(), json!(format!("Visitor {}", p.visitor)));
            }
        }
        e.weft.source = "web".into();
        e.weft.country = Some(COUNTRIES[(hash(seed, v, 39) % 6) as usize].into());
        e.weft.device = Some(if p.device == 0 { "desktop" } else { "mobile" }.into());
        e
    }

    /// Every event, in order.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        (0..self.len()).map(|i| self.event(i))
    }
}

/// A counter-based hash (SplitMix64 over the seed, a key and a stream number).
fn hash(seed: u64, key: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(key.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A UUID-shaped text (version 4 layout) from 128 bits.
fn uuid(hi: u64, lo: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    let bytes = [hi.to_be_bytes(), lo.to_be_bytes()].concat();
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_deterministic_and_has_the_asked_shape() {
        let spec = WorkloadSpec {
            events: 20_000,
            visitors: 4_000,
            ..WorkloadSpec::default()
        };
        let (a, b) = (Workload::new(spec), Workload::new(spec));
        assert_eq!(a.len(), 20_000);
        for i in [0, 7, 19_999] {
            assert_eq!(a.event(i), b.event(i));
        }
        assert!(a
            .events()
            .zip(a.events().skip(1))
            .all(|(x, y)| x.timestamp <= y.timestamp));
        let people: Vec<Visitor> = (0..4_000).map(|v| a.visitor(v)).collect();
        let pct = |f: fn(&Visitor) -> bool| people.iter().filter(|p| f(p)).count() * 100 / 4_000;
        assert!((17..=23).contains(&pct(|p| p.identifies)));
        assert!((3..=7).contains(&pct(|p| p.devices > 1)));
        assert!(pct(|p| p.junk) <= 2);
        assert_eq!(a.anonymous_id(1, 0).len(), 36);
    }
}

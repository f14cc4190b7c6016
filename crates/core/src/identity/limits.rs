//! Per-kind limits: whether a set of identifiers may live in one profile.
//!
//! A kind's limit holds when no window of its length (or, without a window, the whole
//! profile) holds more identifiers of the kind, counted by when each was first seen. A
//! resolution only has to keep the limits it would change: a profile an operator joined
//! against the rules stays as it is, but nothing more is added to an over-full kind.

use super::{IdKind, IdentityConfig, KindRule};
use crate::profile::Held;
use crate::time::Millis;

/// Whether identifiers first seen at `times` keep `rule`.
///
/// With a window `w` and limit `n`: every `n + 1` identifiers in time order span at least
/// `w`, which is the same as "no window of length `w` holds more than `n`".
pub(crate) fn fits(times: &mut [Millis], rule: KindRule) -> bool {
    let limit = rule.limit as usize;
    if times.len() <= limit {
        return true;
    }
    let Some(window) = rule.window() else {
        return false;
    };
    times.sort_unstable();
    times.windows(limit + 1).all(|w| w[limit] - w[0] >= window)
}

/// The first kind whose limit a profile made of `parts` plus the new identifiers `new`
/// would break, if any.
///
/// A kind held by only one existing part, and not added to, is left as it is.
pub(crate) fn broken(
    config: &IdentityConfig,
    parts: &[&[Held]],
    new: &[&[Held]],
) -> Option<IdKind> {
    let new = || new.iter().flat_map(|n| n.iter());
    let all = || parts.iter().flat_map(|p| p.iter()).chain(new());
    for (i, held) in all().enumerate() {
        let kind = &held.id.kind;
        // Each kind once, where it first appears (a profile holds a few identifiers).
        if all().take(i).any(|h| &h.id.kind == kind) {
            continue;
        }
        let in_new = new().any(|h| &h.id.kind == kind);
        let holding_parts = parts
            .iter()
            .filter(|p| p.iter().any(|h| &h.id.kind == kind))
            .count();
        if !in_new && holding_parts <= 1 {
            continue;
        }
        let rule = config.rule(kind);
        // Within the limit by count alone, the times need no sorting.
        if all().filter(|h| &h.id.kind == kind).count() <= rule.limit as usize {
            continue;
        }
        let mut times: Vec<Millis> = all()
            .filter(|h| &h.id.kind == kind)
            .map(|h| h.first_seen)
            .collect();
        if !fits(&mut times, rule) {
            return Some(kind.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identifier;
    use crate::time::DAY;

    fn held(kind: IdKind, value: &str, at: Millis) -> Held {
        Held {
            id: Identifier::new(kind, value),
            first_seen: at,
        }
    }

    #[test]
    fn windowed_limit_counts_within_any_window() {
        let rule = KindRule {
            limit: 2,
            window_days: Some(7),
            priority: 0,
        };
        let cases: [(&[Millis], bool); 5] = [
            (&[0, DAY], true),
            (&[0, DAY, 2 * DAY], false),
            (&[0, DAY, 7 * DAY], true),
            (&[0, 7 * DAY, 8 * DAY, 13 * DAY], false),
            (&[20 * DAY, 0, 10 * DAY, 7 * DAY + 1], true),
        ];
        for (times, want) in cases {
            assert_eq!(fits(&mut times.to_vec(), rule), want, "{times:?}");
        }
        let flat = KindRule {
            limit: 1,
            window_days: None,
            priority: 0,
        };
        assert!(fits(&mut [5], flat));
        assert!(!fits(&mut [5, 100 * DAY], flat));
    }

    #[test]
    fn two_user_ids_break_the_limit_but_an_untouched_overfull_part_does_not() {
        let c = IdentityConfig::default();
        let a = [
            held(IdKind::UserId, "a", 0),
            held(IdKind::AnonymousId, "x", 0),
        ];
        let b = [held(IdKind::UserId, "b", 0)];
        assert_eq!(broken(&c, &[&a, &b], &[]), Some(IdKind::UserId));
        assert_eq!(
            broken(&c, &[&a], &[&[held(IdKind::UserId, "c", 1)]]),
            Some(IdKind::UserId)
        );

        let joined = [held(IdKind::UserId, "a", 0), held(IdKind::UserId, "b", 0)];
        let anon = [held(IdKind::AnonymousId, "y", 0)];
        assert_eq!(
            broken(&c, &[&joined, &anon], &[&[held(IdKind::Email, "e@x", 0)]]),
            None
        );
    }
}

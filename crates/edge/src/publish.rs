//! When a decision doc goes to KV: only when it changed, at most once per key per second.
//!
//! KV takes one write per key per second. The first change of a key is written at once;
//! further changes within that second are kept as pending and flushed by the Durable
//! Object's alarm when the second is over. The version in a doc grows by one per
//! change, so a reader can tell a newer doc from an older one.

use weft_core::segment::{Decision, Evaluation};
use weft_core::time::{Millis, SECOND};

/// The minimum time between two writes of one KV key.
pub const MIN_WRITE_GAP: Millis = SECOND;

/// When to write a new doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write it now.
    WriteNow,
    /// Keep it pending and write it at this moment.
    WriteAt(Millis),
}

/// What the Durable Object remembers of one KV key.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The doc last written to KV, or pending for it.
    pub decision: Decision,
    /// When the key was last written to KV.
    pub written_at: Millis,
    /// Whether `decision` waits for the alarm.
    pub pending: bool,
}

/// Decides what to do with a key's new evaluation at `now`: the doc to publish (one
/// version up) and when, or `None` when KV already answers right. A key never written
/// reads as no segments ([`crate::decide::EMPTY_DECISION`]), so a visitor in no segment,
/// with no rule about to lapse, costs no write: most visitors never are in one.
pub fn plan(
    previous: Option<&Published>,
    evaluation: &Evaluation,
    now: Millis,
) -> Option<(Decision, Action)> {
    if previous.is_none() && evaluation.segments.is_empty() && evaluation.valid_until.is_none() {
        return None;
    }
    let next = Decision::follow(previous.map(|p| &p.decision), evaluation, now)?;
    let action = match previous {
        None => Action::WriteNow,
        Some(p) if p.pending => Action::WriteAt(p.written_at + MIN_WRITE_GAP),
        Some(p) if now - p.written_at >= MIN_WRITE_GAP => Action::WriteNow,
        Some(p) => Action::WriteAt(p.written_at + MIN_WRITE_GAP),
    };
    Some((next, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(segments: &[&str], written_at: Millis, pending: bool) -> Published {
        let evaluation = Evaluation {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            valid_until: None,
            bot: false,
        };
        Published {
            decision: Decision::new(&evaluation, 3),
            written_at,
            pending,
        }
    }

    #[test]
    fn a_key_never_written_needs_no_doc_until_it_has_segments_or_a_lapse() {
        let empty = Evaluation {
            segments: vec![],
            valid_until: None,
            bot: false,
        };
        assert_eq!(plan(None, &empty, 10_000), None);
        let lapsing = Evaluation {
            valid_until: Some(20_000),
            ..empty.clone()
        };
        assert_eq!(
            plan(None, &lapsing, 10_000).map(|(_, a)| a),
            Some(Action::WriteNow)
        );
        // Once written, leaving every segment is a change KV must hear about.
        let was_in = published(&["paid"], 8_000, false);
        let (doc, action) = plan(Some(&was_in), &empty, 10_000).unwrap();
        assert_eq!((doc.segments.len(), action), (0, Action::WriteNow));
    }

    #[test]
    fn writes_are_coalesced_to_one_per_key_per_second() {
        let paid = Evaluation {
            segments: vec!["paid".to_owned()],
            valid_until: None,
            bot: false,
        };
        let cases = [
            (None, 10_000, Some(Action::WriteNow)),
            (Some(published(&["paid"], 9_500, false)), 10_000, None),
            (
                Some(published(&[], 8_000, false)),
                10_000,
                Some(Action::WriteNow),
            ),
            (
                Some(published(&[], 9_500, false)),
                10_000,
                Some(Action::WriteAt(10_500)),
            ),
            (
                Some(published(&[], 9_000, true)),
                10_000,
                Some(Action::WriteAt(10_000)),
            ),
        ];
        for (previous, now, want) in cases {
            let got = plan(previous.as_ref(), &paid, now);
            assert_eq!(got.as_ref().map(|(_, a)| *a), want, "{previous:?}");
            if let (Some((doc, _)), Some(p)) = (got, &previous) {
                assert_eq!(doc.version, p.decision.version + 1);
                assert_eq!(doc.segments, ["paid"]);
            }
        }
    }
}

//! Instants as milliseconds since the Unix epoch, and their RFC 3339 text form.
//!
//! Events carry several clocks (the client's `timestamp` and `sentAt`, the collector's
//! `receivedAt`); all of them are kept as [`Millis`] so that clock-skew correction and
//! time windows are plain integer arithmetic. Parsing is hand-written: it accepts what
//! Segment-spec clients send (`2024-05-03T12:00:00Z`, fractional seconds, numeric
//! offsets, a space instead of `T`) and nothing looser.

use alloc::string::String;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// One second in [`Millis`].
pub const SECOND: Millis = 1_000;
/// One minute in [`Millis`].
pub const MINUTE: Millis = 60 * SECOND;
/// One hour in [`Millis`].
pub const HOUR: Millis = 60 * MINUTE;
/// One day in [`Millis`].
pub const DAY: Millis = 24 * HOUR;

/// Why a text could not be read as an RFC 3339 instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// The text does not have the `YYYY-MM-DDTHH:MM:SS` shape.
    Shape,
    /// A field is out of its range (month 13, minute 61, ...).
    Range,
}

impl TimeError {
    /// A lowercase description of the fault.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeError::Shape => "not an rfc 3339 timestamp (expected YYYY-MM-DDTHH:MM:SSZ)",
            TimeError::Range => "timestamp field out of range",
        }
    }
}

/// An instant read from text, with whether the text named its time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The instant; a text without a zone is read as UTC.
    pub at: Millis,
    /// False when the text had no `Z` or offset.
    pub had_zone: bool,
}

/// Reads an RFC 3339 timestamp.
///
/// A timestamp without a zone is read as UTC and reported through
/// [`Parsed::had_zone`], so the caller can warn about it.
///
/// ```
/// use weft_core::time::parse_rfc3339;
/// let p = parse_rfc3339("2024-05-03T12:00:00.250+02:00").unwrap();
/// assert_eq!(p.at, 1_714_730_400_250);
/// assert!(p.had_zone);
/// ```
///
/// # Errors
/// [`TimeError`] when the text is not a timestamp or a field is out of range.
pub fn parse_rfc3339(text: &str) -> Result<Parsed, TimeError> {
    let b = text.trim().as_bytes();
    if b.len() < 19 {
        return Err(TimeError::Shape);
    }
    let num = |range: core::ops::Range<usize>| -> Result<i64, TimeError> {
        let mut n = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return Err(TimeError::Shape);
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Ok(n)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(TimeError::Shape);
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(TimeError::Shape);
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(TimeError::Range);
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimeError::Range);
    }

    let mut i = 19;
    let mut millis = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(TimeError::Shape);
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }

    let (offset, had_zone) = match b.get(i) {
        None => (0, false),
        Some(b'Z' | b'z') if i + 1 == b.len() => (0, true),
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Err(TimeError::Range);
            }
            let off = (h * 60 + m) * MINUTE;
            (if sign == b'+' { off } else { -off }, true)
        }
        _ => return Err(TimeError::Shape),
    };

    let days = days_from_civil(year, month, day);
    let at = days * DAY + hour * HOUR + minute * MINUTE + second.min(59) * SECOND + millis - offset;
    Ok(Parsed { at, had_zone })
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// ```
/// assert_eq!(weft_core::time::format_rfc3339(0), "1970-01-01T00:00:00.000Z");
/// ```
pub fn format_rfc3339(at: Millis) -> String {
    let days = at.div_euclid(DAY);
    let rest = at.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, month, 2);
    out.push('-');
    push_digits(&mut out, day, 2);
    out.push('T');
    push_digits(&mut out, rest / HOUR, 2);
    out.push(':');
    push_digits(&mut out, rest % HOUR / MINUTE, 2);
    out.push(':');
    push_digits(&mut out, rest % MINUTE / SECOND, 2);
    out.push('.');
    push_digits(&mut out, rest % SECOND, 3);
    out.push('Z');
    out
}

/// The day number (days since the epoch) of an instant.
pub fn day_of(at: Millis) -> i64 {
    at.div_euclid(DAY)
}

fn push_digits(out: &mut String, value: i64, width: u32) {
    let value = value.rem_euclid(10i64.pow(width));
    for p in (0..width).rev() {
        let digit = (value / 10i64.pow(p)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm, proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        let cases = [
            ("2024-05-01T12:00:00Z", 1_714_564_800_000, true),
            ("2024-05-01T12:00:00.5Z", 1_714_564_800_500, true),
            ("2024-05-01T12:00:00.123456Z", 1_714_564_800_123, true),
            ("2024-05-01 12:00:00Z", 1_714_564_800_000, true),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800_000, true),
            ("2024-05-01T07:30:00-04:30", 1_714_564_800_000, true),
            ("2024-05-01T12:00:00", 1_714_564_800_000, false),
        ];
        for (text, at, had_zone) in cases {
            assert_eq!(parse_rfc3339(text), Ok(Parsed { at, had_zone }), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        let shape = [
            "",
            "yesterday",
            "2024-05-01",
            "2024/05/01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
        ];
        for text in shape {
            assert_eq!(parse_rfc3339(text), Err(TimeError::Shape), "{text}");
        }
        let range = [
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
        ];
        for text in range {
            assert_eq!(parse_rfc3339(text), Err(TimeError::Range), "{text}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for at in [
            0,
            1_714_564_800_123,
            -86_400_001,
            4_102_444_800_000,
            951_782_400_000,
        ] {
            let text = format_rfc3339(at);
            assert_eq!(parse_rfc3339(&text).map(|p| p.at), Ok(at), "{text}");
        }
        assert_eq!(
            format_rfc3339(1_714_564_800_123),
            "2024-05-01T12:00:00.123Z"
        );
    }
}

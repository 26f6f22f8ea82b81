//! Durations such as `500ms`, `30s`, `10m`, `1h` and `1m30s`.
//!
//! The accepted form is deliberately narrower than what humantime reads: one or more
//! `<integer><unit>` pairs with no spaces, units `ms`, `s`, `m`, `h` and `d` (and `us`,
//! `ns`). A bare number is refused because `timeout: 30` is ambiguous between seconds and
//! milliseconds; so is `30 seconds`, so that every spec spells durations the same way.

use std::time::Duration;

const UNITS: &[&str] = &["ns", "us", "ms", "s", "m", "h", "d"];

/// Why a duration was refused; the caller words the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Only digits: the unit is missing.
    MissingUnit,
    /// Anything else that is not `<integer><unit>...`, or a value too large.
    Invalid,
}

/// Parses a duration in the compact form described in the module docs.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::MissingUnit);
    }
    if !is_compact(text) {
        return Err(DurationError::Invalid);
    }
    humantime::parse_duration(text).map_err(|_| DurationError::Invalid)
}

/// Whether `text` is a non-empty sequence of `<digits><unit>` pairs.
fn is_compact(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if !UNITS.contains(&&rest[..letters]) {
            return false;
        }
        rest = &rest[letters..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_compact_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn a_bare_number_misses_its_unit() {
        assert_eq!(parse_duration("30"), Err(DurationError::MissingUnit));
        assert_eq!(parse_duration("0"), Err(DurationError::MissingUnit));
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            "30 seconds",
            "30seconds",
            "1m 30s",
            " 30s",
            "30s ",
            "s",
            "1.5s",
            "-1s",
            "30x",
            "ms30",
            "99999999999999999999999h",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Invalid),
                "{text:?}"
            );
        }
    }
}

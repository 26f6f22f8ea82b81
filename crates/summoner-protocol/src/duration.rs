//! Durations as summoner writes them everywhere: `500ms`, `30s`, `10m`, `2h`, `1d`, `1m30s`.
//!
//! One grammar for `summoner.toml`, `.summoner.yml` and every command-line flag, so that a
//! user who learns it once can write it anywhere (`docs/spec.md`, "Durations", is the
//! reference). A duration is one or more `<integer><unit>` parts with nothing between them;
//! the parts add up. Units: `ms`, `s`, `m`, `h`, `d`, in lower case. Nothing else:
//!
//! - no bare number: `30` could mean seconds or milliseconds, so it is refused with a
//!   message that says to add a unit;
//! - no spaces (`1m 30s`), no long unit names (`30 seconds`, `30sec`), no fractions
//!   (`1.5s`: write `1s500ms`), no signs (`-5s`), no units below a millisecond.
//!
//! It lives in the protocol crate because every crate can reach it, and the broker words
//! revoke reasons with [`format_duration`] ("max hold time 10m exceeded").
//!
//! ```
//! use std::time::Duration;
//! use summoner_protocol::duration::{format_duration, parse_duration};
//!
//! assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
//! assert_eq!(
//!     parse_duration("30").unwrap_err().to_string(),
//!     "`30` has no unit: write `30s` or `30ms`"
//! );
//! ```

use std::fmt;
use std::time::Duration;

/// The units, largest first, with their length in milliseconds.
const UNITS: &[(&str, u64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What is accepted, for messages.
const EXAMPLES: &str = "whole numbers with a unit (ms, s, m, h, d) and no spaces, \
                        such as `500ms`, `30s`, `10m` or `1m30s`";

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", message(&self.text, self.kind))]
pub struct DurationError {
    text: String,
    kind: DurationErrorKind,
}

/// The kind of a [`DurationError`], for callers that word their own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationErrorKind {
    /// Only digits: the unit is missing (`30`).
    MissingUnit,
    /// Well formed, but more than a `Duration` holds.
    TooLarge,
    /// Anything else: empty, spaces, unknown units, fractions, signs.
    Invalid,
}

impl DurationError {
    /// What was wrong.
    pub fn kind(&self) -> DurationErrorKind {
        self.kind
    }

    /// The text that was refused.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The error for a number written without a unit, such as an integer in a YAML or TOML
    /// file (`timeout: 30`), which never reaches [`parse_duration`] as text.
    pub fn missing_unit(number: impl fmt::Display) -> DurationError {
        DurationError {
            text: number.to_string(),
            kind: DurationErrorKind::MissingUnit,
        }
    }
}

fn message(text: &str, kind: DurationErrorKind) -> String {
    match kind {
        DurationErrorKind::MissingUnit => {
            format!("`{text}` has no unit: write `{text}s` or `{text}ms`")
        }
        DurationErrorKind::TooLarge => format!("`{text}` is too long a duration"),
        DurationErrorKind::Invalid if text.is_empty() => {
            format!("expected a duration, {EXAMPLES}; found an empty string")
        }
        DurationErrorKind::Invalid => format!("expected a duration, {EXAMPLES}; found `{text}`"),
    }
}

/// Parses a duration in the grammar of the module docs.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = |kind| DurationError {
        text: text.to_owned(),
        kind,
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(DurationErrorKind::MissingUnit));
    }
    if text.is_empty() {
        return Err(error(DurationErrorKind::Invalid));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_lowercase)
            .count();
        let unit = &rest[digits..digits + letters];
        let Some(&(_, millis_per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(error(DurationErrorKind::Invalid));
        };
        if digits == 0 {
            return Err(error(DurationErrorKind::Invalid));
        }
        // Any run of digits is a valid number; one too long for a u64 is too large.
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| error(DurationErrorKind::TooLarge))?;
        let part = number
            .checked_mul(millis_per_unit)
            .map(Duration::from_millis)
            .ok_or_else(|| error(DurationErrorKind::TooLarge))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| error(DurationErrorKind::TooLarge))?;
        rest = &rest[digits + letters..];
    }
    Ok(total)
}

/// Formats a duration in the form [`parse_duration`] reads, largest units first: `10m`,
/// `1h30m`, `1s500ms`, `0s`. Parts below a millisecond are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for &(unit, size) in UNITS {
        let size = u128::from(size);
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

/// A visitor that reads a duration from a string, and refuses a bare number with the
/// message that asks for a unit (rather than serde's "invalid type: integer").
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a duration, {EXAMPLES}")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        parse_duration(text).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Duration, E> {
        Err(E::custom(DurationError::missing_unit(number)))
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Duration, E> {
        Err(E::custom(DurationError::missing_unit(number)))
    }
}

/// `#[serde(with = ...)]` for `Duration` fields written as `"30s"`.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    use super::{DurationVisitor, format_duration};

    /// Writes the duration as [`format_duration`] does.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Reads a duration as [`parse_duration`](super::parse_duration) does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(with = ...)]` for `Option<Duration>` fields written as `"30s"` or left out.
pub mod serde_opt_duration {
    use std::fmt;
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    use super::{DurationVisitor, format_duration};

    /// Writes the duration as [`format_duration`] does, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration as [`parse_duration`](super::parse_duration) does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> serde::de::Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            DurationVisitor.expecting(f)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(DurationVisitor).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_whole_numbers_with_units() {
        for (text, millis) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("10m", 600_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("1m30s", 90_000),
            ("1h30m", 5_400_000),
            ("1s500ms", 1_500),
            ("0s", 0),
            ("0ms", 0),
            ("007s", 7_000),
            // The parts add up whatever their order.
            ("30s1m", 90_000),
            ("1d2h3m4s5ms", 93_784_005),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_everything_else() {
        use DurationErrorKind::*;
        for (text, kind) in [
            ("30", MissingUnit),
            ("0", MissingUnit),
            ("", Invalid),
            ("s", Invalid),
            ("ms30", Invalid),
            ("30 seconds", Invalid),
            ("30seconds", Invalid),
            ("30sec", Invalid),
            ("10 minutes", Invalid),
            ("1m 30s", Invalid),
            (" 30s", Invalid),
            ("30s ", Invalid),
            ("1.5s", Invalid),
            ("-1s", Invalid),
            ("+1s", Invalid),
            ("30S", Invalid),
            ("30x", Invalid),
            ("30s5", Invalid),
            ("250us", Invalid),
            ("10ns", Invalid),
            ("1w", Invalid),
            ("٣s", Invalid),
            ("99999999999999999999d", TooLarge),
            ("999999999999999999ms999999999999999999d", TooLarge),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err.kind(), kind, "{text:?}");
            assert_eq!(err.text(), text);
        }
    }

    #[test]
    fn messages_say_what_to_write() {
        let message = |text| parse_duration(text).unwrap_err().to_string();
        assert_eq!(message("30"), "`30` has no unit: write `30s` or `30ms`");
        assert_eq!(
            message("30 seconds"),
            "expected a duration, whole numbers with a unit (ms, s, m, h, d) and no spaces, \
             such as `500ms`, `30s`, `10m` or `1m30s`; found `30 seconds`"
        );
        assert_eq!(
            message(""),
            "expected a duration, whole numbers with a unit (ms, s, m, h, d) and no spaces, \
             such as `500ms`, `30s`, `10m` or `1m30s`; found an empty string"
        );
        assert_eq!(
            message("99999999999999999999d"),
            "`99999999999999999999d` is too long a duration"
        );
    }

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "500ms", "30s", "10m", "2h", "1d", "1m30s", "1h30m", "1s500ms", "0s",
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
        assert_eq!(format_duration(Duration::from_micros(999)), "0s");
        // The largest duration the grammar holds is u64::MAX milliseconds.
        let max = Duration::from_millis(u64::MAX);
        assert_eq!(parse_duration(&format_duration(max)), Ok(max));
    }

    #[test]
    fn serde_reads_strings_and_asks_a_number_for_its_unit() {
        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct Config {
            #[serde(with = "serde_duration")]
            every: Duration,
            #[serde(default, with = "serde_opt_duration")]
            limit: Option<Duration>,
        }
        let config: Config = serde_json::from_str(r#"{"every": "1m30s", "limit": "2h"}"#).unwrap();
        assert_eq!(config.every, Duration::from_secs(90));
        assert_eq!(config.limit, Some(Duration::from_secs(7200)));
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"every":"1m30s","limit":"2h"}"#
        );
        let config: Config = serde_json::from_str(r#"{"every": "1s", "limit": null}"#).unwrap();
        assert_eq!(config.limit, None);
        let config: Config = serde_json::from_str(r#"{"every": "1s"}"#).unwrap();
        assert_eq!(config.limit, None);

        let err = serde_json::from_str::<Config>(r#"{"every": 30}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`30` has no unit: write `30s` or `30ms`"),
            "{err}"
        );
        let err = serde_json::from_str::<Config>(r#"{"every": "1s", "limit": 5}"#).unwrap_err();
        assert!(err.to_string().starts_with("`5` has no unit"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"every": true}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid type: boolean `true`, expected a duration, whole numbers"),
            "{err}"
        );
    }
}

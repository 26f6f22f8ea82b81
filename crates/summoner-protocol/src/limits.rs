//! Limits that keep one client from making the server do unbounded work or hold unbounded
//! memory.
//!
//! Every input the server keeps has a bound: the frame, the ids, notes, names, labels and
//! props in it, how many requests one session may have waiting and how many wait in all.
//! The defaults are generous for real test suites (a job rarely wants more than a handful of
//! resources) and small enough that neither a single frame nor a flood of them can exhaust
//! memory or make the matching of one request expensive. [`Limits`] is the `[limits]` block
//! of the server's config; `docs/config.md` lists the fields and `docs/protocol.md` what a
//! client is told when it exceeds one.
//!
//! Lengths of text are counted in characters (Unicode scalar values), not bytes, so a limit
//! means the same in every script; a character is at most 4 bytes, which bounds the memory.

use serde::{Deserialize, Serialize};

use crate::prop::{Labels, PropValue, Props};
use crate::text::prefix;

/// Largest text frame the server accepts by default, in bytes. A larger frame closes the
/// connection with WebSocket close code 1009 ("message too big").
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Most items (`want` entries) one `acquire` may ever have, whatever the config says: the
/// engine describes which items a resource matches as a single `u64` bit set.
pub const MAX_ITEMS: usize = 64;

/// Largest `count` of one `want` item by default.
pub const MAX_COUNT: u32 = 10_000;

/// Longest `note` of an `acquire` by default, in characters (Unicode scalar values, not bytes).
pub const MAX_NOTE_CHARS: usize = 256;

/// The bounds on what clients and admins may send, with their config names (`[limits]`).
///
/// A value of 0 is refused by [`Limits::check`]: a bound that refuses everything is a
/// mistake, not a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket text frame, in bytes; a larger one closes the connection with 1009.
    pub frame_bytes: usize,
    /// Most requests one session may have waiting at once.
    pub waiting_per_session: usize,
    /// Most requests waiting on the whole server at once.
    pub waiting_total: usize,
    /// Most items (`want` entries) in one `acquire`; at most [`MAX_ITEMS`].
    pub items_per_request: usize,
    /// Largest `count` of one `want` item.
    pub count_per_item: u32,
    /// Longest request id (a string `id`), and longest `lease` and `session` a client may
    /// name, in characters.
    pub id_chars: usize,
    /// Longest `note` of an `acquire`, in characters.
    pub note_chars: usize,
    /// Longest pool or resource name, in characters.
    pub name_chars: usize,
    /// Most labels of one resource, or of one `want` item's selector.
    pub label_count: usize,
    /// Longest label key or value, in characters.
    pub label_chars: usize,
    /// Most props of one resource.
    pub prop_count: usize,
    /// Longest prop key or string value, in characters.
    pub prop_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_bytes: MAX_FRAME_BYTES,
            waiting_per_session: 100,
            waiting_total: 10_000,
            items_per_request: MAX_ITEMS,
            count_per_item: MAX_COUNT,
            id_chars: 128,
            note_chars: MAX_NOTE_CHARS,
            name_chars: 128,
            label_count: 32,
            label_chars: 128,
            prop_count: 32,
            prop_chars: 1024,
        }
    }
}

/// A `[limits]` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`limits.{field}` must be {expected}")]
pub struct BadLimit {
    /// The field, as in the config.
    pub field: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

/// Something over one of the [`Limits`]: which limit, what exceeded it and by how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has {actual} {unit}; at most {max} {verb} allowed (`limits.{limit}`)", verb = are(.max))]
pub struct LimitExceeded {
    /// The limit's name in the `[limits]` block, e.g. `name_chars`.
    pub limit: &'static str,
    /// What exceeded it, e.g. "the name of pool `ports…`".
    pub what: String,
    /// "characters", "items", "labels", "waiting requests".
    pub unit: &'static str,
    /// How many there were.
    pub actual: usize,
    /// The limit.
    pub max: usize,
}

impl Limits {
    /// Checks that every limit can be used: none is 0, and `items_per_request` is at most
    /// [`MAX_ITEMS`].
    pub fn check(&self) -> Result<(), BadLimit> {
        let at_least_one = [
            ("frame_bytes", self.frame_bytes),
            ("waiting_per_session", self.waiting_per_session),
            ("waiting_total", self.waiting_total),
            ("items_per_request", self.items_per_request),
            ("count_per_item", self.count_per_item as usize),
            ("id_chars", self.id_chars),
            ("note_chars", self.note_chars),
            ("name_chars", self.name_chars),
            ("label_count", self.label_count),
            ("label_chars", self.label_chars),
            ("prop_count", self.prop_count),
            ("prop_chars", self.prop_chars),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(BadLimit {
                    field,
                    expected: "at least 1",
                });
            }
        }
        if self.items_per_request > MAX_ITEMS {
            return Err(BadLimit {
                field: "items_per_request",
                expected: "at most 64",
            });
        }
        Ok(())
    }

    /// Checks the length of a text against `max` characters.
    fn chars(
        limit: &'static str,
        max: usize,
        text: &str,
        what: impl FnOnce() -> String,
    ) -> Result<(), LimitExceeded> {
        // Each character is at least one byte, so a text of at most `max` bytes is within.
        if text.len() <= max {
            return Ok(());
        }
        let actual = text.chars().count();
        if actual <= max {
            return Ok(());
        }
        Err(LimitExceeded {
            limit,
            what: what(),
            unit: "characters",
            actual,
            max,
        })
    }

    /// Checks a request id's length (numbers are bounded by their range).
    pub fn check_id(&self, id: &str, what: impl FnOnce() -> String) -> Result<(), LimitExceeded> {
        Self::chars("id_chars", self.id_chars, id, what)
    }

    /// Checks a note's length.
    pub fn check_note(
        &self,
        note: &str,
        what: impl FnOnce() -> String,
    ) -> Result<(), LimitExceeded> {
        Self::chars("note_chars", self.note_chars, note, what)
    }

    /// Checks a pool or resource name's length.
    pub fn check_name(
        &self,
        name: &str,
        what: impl FnOnce() -> String,
    ) -> Result<(), LimitExceeded> {
        Self::chars("name_chars", self.name_chars, name, what)
    }

    /// Checks the number of labels and the length of each key and value; `of` says whose
    /// labels they are ("resource `rpi-1` of pool `boards`").
    pub fn check_labels(&self, labels: &Labels, of: &str) -> Result<(), LimitExceeded> {
        if labels.len() > self.label_count {
            return Err(LimitExceeded {
                limit: "label_count",
                what: format!("the labels of {of}"),
                unit: "labels",
                actual: labels.len(),
                max: self.label_count,
            });
        }
        for (key, value) in labels {
            Self::chars("label_chars", self.label_chars, key, || {
                format!("a label key of {of} (`{}…`)", prefix(key))
            })?;
            Self::chars("label_chars", self.label_chars, value, || {
                format!("the value of label `{}` of {of}", prefix(key))
            })?;
        }
        Ok(())
    }

    /// Checks the number of props and the length of each key and string value.
    pub fn check_props(&self, props: &Props, of: &str) -> Result<(), LimitExceeded> {
        if props.len() > self.prop_count {
            return Err(LimitExceeded {
                limit: "prop_count",
                what: format!("the props of {of}"),
                unit: "props",
                actual: props.len(),
                max: self.prop_count,
            });
        }
        for (key, value) in props {
            Self::chars("prop_chars", self.prop_chars, key, || {
                format!("a prop key of {of} (`{}…`)", prefix(key))
            })?;
            if let PropValue::String(value) = value {
                Self::chars("prop_chars", self.prop_chars, value, || {
                    format!("the value of prop `{}` of {of}", prefix(key))
                })?;
            }
        }
        Ok(())
    }
}

/// "is" for one, "are" for more.
fn are(n: &usize) -> &'static str {
    if *n == 1 { "is" } else { "are" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_usable_and_zero_is_not() {
        assert_eq!(Limits::default().check(), Ok(()));
        let zero = Limits {
            waiting_per_session: 0,
            ..Limits::default()
        };
        assert_eq!(
            zero.check().unwrap_err().to_string(),
            "`limits.waiting_per_session` must be at least 1"
        );
        let wide = Limits {
            items_per_request: 65,
            ..Limits::default()
        };
        assert_eq!(
            wide.check().unwrap_err().to_string(),
            "`limits.items_per_request` must be at most 64"
        );
    }

    #[test]
    fn lengths_count_characters_and_name_the_limit() {
        let limits = Limits {
            name_chars: 3,
            ..Limits::default()
        };
        assert!(limits.check_name("ééé", || unreachable!()).is_ok());
        let err = limits
            .check_name("abcd", || "the name of a pool".into())
            .unwrap_err();
        assert_eq!(err.limit, "name_chars");
        assert_eq!(
            err.to_string(),
            "the name of a pool has 4 characters; at most 3 are allowed (`limits.name_chars`)"
        );
    }

    #[test]
    fn labels_and_props_are_bounded_in_number_and_length() {
        let limits = Limits {
            label_count: 1,
            prop_chars: 4,
            ..Limits::default()
        };
        let two = Labels::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        let err = limits.check_labels(&two, "resource `r`").unwrap_err();
        assert_eq!(err.limit, "label_count");
        let props = Props::from([("port".into(), PropValue::from("12345"))]);
        let err = limits.check_props(&props, "resource `r`").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the value of prop `port` of resource `r` has 5 characters; at most 4 are allowed \
             (`limits.prop_chars`)"
        );
        // Numbers and booleans are bounded by their type.
        let props = Props::from([("port".into(), PropValue::from(123_456_u64))]);
        assert!(limits.check_props(&props, "resource `r`").is_ok());
    }
}

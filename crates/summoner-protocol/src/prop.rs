//! Labels (what selectors match) and props (what a holder is handed).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Number;

/// Labels of a resource, or the labels an `acquire` item requires: string to string.
/// A `BTreeMap` so that the JSON form is stable (sorted keys), which snapshots and humans like.
pub type Labels = BTreeMap<String, String>;

/// Labels that refuse a key named twice, where a plain map would keep the last value: the
/// strict protocol does not let the order of keys decide what a request means.
pub(crate) fn strict_labels<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Labels, D::Error> {
    struct LabelsVisitor;
    impl<'de> Visitor<'de> for LabelsVisitor {
        type Value = Labels;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of string labels")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
            let mut labels = Labels::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if labels.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "label `{}` appears twice",
                        crate::text::prefix(&key)
                    )));
                }
                labels.insert(key, value);
            }
            Ok(labels)
        }
    }
    deserializer.deserialize_map(LabelsVisitor)
}

/// Properties handed to a holder: a port, a serial device, an address.
pub type Props = BTreeMap<String, PropValue>;

/// A property value: a JSON scalar. A port is the number `20000`, not the string `"20000"`,
/// so that clients can use it without parsing; nested objects are not allowed, because props
/// are also exported as environment variables by `summoner lease`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PropValue {
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A JSON string.
    String(String),
}

impl From<&str> for PropValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for PropValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for PropValue {
    fn from(n: i64) -> Self {
        Self::Number(n.into())
    }
}

impl From<u64> for PropValue {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

impl From<bool> for PropValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// The value as an environment variable would show it: strings bare, numbers and booleans as
/// JSON writes them.
impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl Serialize for PropValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for PropValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PropVisitor;
        impl Visitor<'_> for PropVisitor {
            type Value = PropValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<PropValue, E> {
                Ok(PropValue::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PropValue, E> {
                Ok(PropValue::Number(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PropValue, E> {
                Ok(PropValue::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PropValue, E> {
                Number::from_f64(v)
                    .map(PropValue::Number)
                    .ok_or_else(|| E::custom("a prop must be a finite number"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PropValue, E> {
                Ok(PropValue::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<PropValue, E> {
                Ok(PropValue::String(v))
            }
        }
        deserializer.deserialize_any(PropVisitor)
    }
}

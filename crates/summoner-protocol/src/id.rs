//! Identifiers: the client's request ids, and the server's session and lease ids.

use std::borrow::Borrow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};

/// The id a client gives an `acquire`, echoed back in `queued`, `granted`, `cancelled` and
/// `error` exactly as it was sent.
///
/// Clients in different languages find different ids natural (a counter, a UUID string), so
/// both strings and integers are accepted. Anything else (null, booleans, objects) is
/// refused, because it would be too easy to send by mistake and could not be echoed
/// faithfully. So are numbers that are not plain integers (`7.5`, `1e3`, `-0`, or beyond
/// 64 bits): JSON parsers turn them into floating point, which cannot give back the text that
/// was sent (`1e3` would come back as `1000.0`), and an id must come back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// A JSON integer from -2^63 to 2^64 - 1, written without a fraction or an exponent, so
    /// that it is echoed exactly as written. (Deserializing a `RequestId` on its own still
    /// takes any number, so that journals written before the rule still read; the rule is
    /// [`crate::ClientMessage::parse`]'s.)
    Number(Number),
    /// A JSON string.
    String(String),
}

impl RequestId {
    /// The id as a JSON value, if `value` is a string or an integer that fits in 64 bits.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) if !n.is_f64() => Some(Self::Number(n.clone())),
            Value::String(s) => Some(Self::String(s.clone())),
            _ => None,
        }
    }
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

/// Why a number was refused as a request id; `docs/protocol.md` says the same.
pub(crate) const NOT_AN_INTEGER_ID: &str = "a numeric request id must be an integer from \
     -9223372036854775808 to 18446744073709551615, without a fraction or an exponent (`7.5`, \
     `1e3` and `-0` cannot be echoed exactly); send anything else as a string";

/// The strict form of a request id in a client's frame: a string, or an integer that can be
/// echoed exactly (see [`RequestId`]).
pub(crate) fn strict_request_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<RequestId, D::Error> {
    match RequestId::deserialize(deserializer)? {
        RequestId::Number(n) if n.is_f64() => Err(de::Error::custom(NOT_AN_INTEGER_ID)),
        id => Ok(id),
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

/// Shown as JSON (`"job-1"` or `7`), so a message can tell the two kinds apart.
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A hand-written visitor rather than `#[serde(untagged)]`, so that a wrong type is
        // reported as "expected a string or a number" instead of "did not match any variant".
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                Ok(RequestId::Number(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId::Number(v.into()))
            }
            // Lenient, for journals and API answers written before ids were restricted to
            // integers; a client's frame is held to the rule by `ClientMessage::parse`.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RequestId, E> {
                Number::from_f64(v)
                    .map(RequestId::Number)
                    .ok_or_else(|| E::custom("a request id must be a finite number"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                Ok(RequestId::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RequestId, E> {
                Ok(RequestId::String(v))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A session: one WebSocket connection and what it holds. The server chooses the form; it
    /// should be hard to guess, because knowing it is enough to `resume` the session.
    SessionId
);

string_id!(
    /// A lease: one granted `acquire`. The server chooses the form.
    LeaseId
);

/// The shown form of a [`SessionId`]: its first [`ShortSessionId::LEN`] characters, which is
/// how the HTTP API and the dashboard name a session.
///
/// A session id is a capability (whoever presents it in `resume` takes over the session and
/// its leases), so only the client that owns a session is ever told all of it. This type can
/// only be made from a whole id by shortening it, so a view that holds one cannot leak the
/// id by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShortSessionId(String);

impl ShortSessionId {
    /// How many characters are shown: of the server's 32 hex digits, 48 bits, enough to tell
    /// sessions apart in a dashboard, while the 80 bits left unknown keep the id impossible to
    /// guess.
    pub const LEN: usize = 12;

    /// The shown form as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&SessionId> for ShortSessionId {
    fn from(session: &SessionId) -> Self {
        let id = session.as_str();
        let end = id
            .char_indices()
            .nth(Self::LEN)
            .map_or(id.len(), |(i, _)| i);
        Self(id[..end].to_owned())
    }
}

impl fmt::Display for ShortSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_session_id_is_a_prefix() {
        let long = SessionId::from("0123456789abcdef0123456789abcdef");
        let short = ShortSessionId::from(&long);
        assert_eq!(short.as_str(), "0123456789ab");
        assert!(long.as_str().starts_with(short.as_str()));
        assert_eq!(ShortSessionId::from(&SessionId::from("s1")).as_str(), "s1");
        // Characters, not bytes: a multi-byte id is not cut inside a character.
        let wide = SessionId::from("ééééééééééééééé");
        assert_eq!(ShortSessionId::from(&wide).as_str(), "éééééééééééé");
        assert_eq!(serde_json::to_string(&short).unwrap(), r#""0123456789ab""#);
    }
}

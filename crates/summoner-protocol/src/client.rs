//! Messages from a client to the server, and the strict parser the server uses for them.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProtocolError;
use crate::id::{LeaseId, RequestId, SessionId, strict_request_id};
use crate::limits::{LimitExceeded, Limits};
use crate::prop::{Labels, strict_labels};
use crate::text::prefix;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Ask for resources; answered by `granted`, or `queued` then `granted`, or `error`.
    Acquire(Acquire),
    /// Give a lease back; answered by `released`.
    Release(Release),
    /// Withdraw a waiting `acquire`; answered by `cancelled`.
    Cancel(Cancel),
    /// Take over the leases of a dropped session; answered by `resumed`.
    Resume(Resume),
    /// An application-level ping for clients that cannot send WebSocket pings; answered by
    /// `pong`.
    Ping(Ping),
}

/// `acquire {id, want, wait_ms, priority, note}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acquire {
    /// Chosen by the client, echoed in every reply about this request: a string or an
    /// integer (see [`RequestId`]).
    #[serde(deserialize_with = "strict_request_id")]
    pub id: RequestId,
    /// What is wanted, all or nothing.
    pub want: Vec<Want>,
    /// How long to wait: absent waits for ever, 0 fails at once with `timeout` unless the
    /// request can be granted immediately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Higher is served first; requests of equal priority are served in arrival order.
    /// Negative values are allowed (served after the default 0); the range is that of `i32`,
    /// -2147483648 to 2147483647.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Free text shown next to the request and the lease in the dashboard (e.g. the job URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One item of an `acquire`: `count` distinct resources of `pool` whose labels include all of
/// `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Want {
    /// The pool's name.
    pub pool: String,
    /// How many distinct resources; 1 when absent.
    #[serde(default = "one")]
    pub count: u32,
    /// Labels a resource must have (with these values) to be chosen; none when absent. A
    /// label named twice is refused, not decided by order.
    #[serde(
        default,
        skip_serializing_if = "Labels::is_empty",
        deserialize_with = "strict_labels"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
}

fn one() -> u32 {
    1
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl Want {
    /// One resource of `pool`, any labels.
    pub fn new(pool: impl Into<String>) -> Self {
        Self {
            pool: pool.into(),
            count: 1,
            labels: Labels::new(),
        }
    }
}

/// `release {lease}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The lease from `granted`.
    pub lease: LeaseId,
}

/// `cancel {id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// The id of the waiting `acquire`.
    #[serde(deserialize_with = "strict_request_id")]
    pub id: RequestId,
}

/// `resume {session}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The session from the `welcome` of the dropped connection.
    pub session: SessionId,
}

/// `ping {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

/// The `type`s a client may send, in the order error messages list them.
const TYPES: &str = "acquire, release, cancel, resume, ping";

impl ClientMessage {
    /// Parses one text frame, checking the default [`Limits`]; see
    /// [`ClientMessage::parse_with`].
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        Self::parse_with(text, &Limits::default())
    }

    /// Parses one text frame, checking `limits`, with errors a client developer can act on
    /// ("missing field `want` in `acquire`"). The error carries the request `id` when the
    /// frame had one, so the `error` reply can echo it.
    ///
    /// Strict: unknown fields, keys that appear twice in an object (`"id":1,"id":2`) and
    /// numeric ids that could not be echoed byte for byte (`1e3`, `7.5`) are refused.
    pub fn parse_with(text: &str, limits: &Limits) -> Result<Self, ProtocolError> {
        if text.len() > limits.frame_bytes {
            return Err(ProtocolError::too_large(
                None,
                format!(
                    "frame of {} bytes exceeds the limit of {} bytes (`limits.frame_bytes`)",
                    text.len(),
                    limits.frame_bytes
                ),
            ));
        }
        // Nearly every frame is well formed, and the typed parse is about twice as fast as
        // going through `Value`; anything it does not accept as it stands goes the slow way,
        // which decides what is wrong and says so.
        if let Some(msg) = fast::parse(text) {
            msg.validate_with(limits)?;
            return Ok(msg);
        }
        Self::parse_slow(text, limits)
    }

    /// The reference parser: through `Value`, so that the `id` and the `type` are known
    /// before the shape is checked, which is what makes the errors precise.
    fn parse_slow(text: &str, limits: &Limits) -> Result<Self, ProtocolError> {
        let (value, repeated) = strict::parse(text)
            .map_err(|e| ProtocolError::bad_request(None, format!("not JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(ProtocolError::bad_request(
                None,
                format!(
                    "expected a JSON object with a `type` field, got {}",
                    describe(&value)
                ),
            ));
        };
        // An id that appears twice is no id at all: echoing either would be a guess. One over
        // its limit is not echoed either.
        let id = match &repeated {
            Some(key) if key == "id" => None,
            _ => map
                .get("id")
                .and_then(RequestId::from_value)
                .filter(|id| check_request_id(id, "", limits).is_ok()),
        };
        if let Some(key) = repeated {
            return Err(ProtocolError::bad_request(
                id,
                format!(
                    "key `{}` appears twice in one object; every key may appear only once",
                    prefix(&key)
                ),
            ));
        }
        let ty = match map.remove("type") {
            Some(Value::String(ty)) => ty,
            Some(other) => {
                return Err(ProtocolError::bad_request(
                    id,
                    format!(
                        "field `type` must be a string (one of {TYPES}), got {}",
                        describe(&other)
                    ),
                ));
            }
            None => {
                return Err(ProtocolError::bad_request(
                    id,
                    format!("missing field `type`; expected one of {TYPES}"),
                ));
            }
        };
        let rest = Value::Object(map);
        let msg = match ty.as_str() {
            "acquire" => Self::Acquire(fields(rest, &ty, &id)?),
            "release" => Self::Release(fields(rest, &ty, &id)?),
            "cancel" => Self::Cancel(fields(rest, &ty, &id)?),
            "resume" => Self::Resume(fields(rest, &ty, &id)?),
            "ping" => Self::Ping(fields(rest, &ty, &id)?),
            _ => {
                return Err(ProtocolError::bad_request(
                    id,
                    format!(
                        "unknown message type `{}`; expected one of {TYPES}",
                        prefix(&ty)
                    ),
                ));
            }
        };
        msg.validate_with(limits)?;
        Ok(msg)
    }

    /// Checks the default [`Limits`] and the rules serde cannot express; see
    /// [`ClientMessage::validate_with`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.validate_with(&Limits::default())
    }

    /// Checks `limits` and the rules serde cannot express (a `count` of at least 1, a
    /// non-empty `want`). [`ClientMessage::parse_with`] calls it; the engine calls it again
    /// for messages built in code.
    pub fn validate_with(&self, limits: &Limits) -> Result<(), ProtocolError> {
        let too_large = |e: LimitExceeded| ProtocolError::too_large(None, e.to_string());
        match self {
            Self::Acquire(acquire) => acquire.validate_with(limits),
            Self::Release(release) => limits
                .check_id(release.lease.as_str(), || "`lease` in `release`".into())
                .map_err(too_large),
            Self::Cancel(cancel) => check_request_id(&cancel.id, "cancel", limits),
            Self::Resume(resume) => limits
                .check_id(resume.session.as_str(), || "`session` in `resume`".into())
                .map_err(too_large),
            Self::Ping(_) => Ok(()),
        }
    }

    /// The JSON text of this message (what a client sends).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a client message always serializes")
    }
}

/// Checks the length of a string id; the error does not echo an id over the limit.
fn check_request_id(id: &RequestId, ty: &str, limits: &Limits) -> Result<(), ProtocolError> {
    match id {
        RequestId::String(s) => limits
            .check_id(s, || format!("`id` in `{ty}`"))
            .map_err(|e| ProtocolError::too_large(None, e.to_string())),
        RequestId::Number(_) => Ok(()),
    }
}

impl Acquire {
    /// See [`ClientMessage::validate`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.validate_with(&Limits::default())
    }

    /// See [`ClientMessage::validate_with`].
    pub fn validate_with(&self, limits: &Limits) -> Result<(), ProtocolError> {
        check_request_id(&self.id, "acquire", limits)?;
        let id = || Some(self.id.clone());
        let too_large = |e: LimitExceeded| ProtocolError::too_large(id(), e.to_string());
        if self.want.is_empty() {
            return Err(ProtocolError::bad_request(
                id(),
                "`want` in `acquire` must list at least one item",
            ));
        }
        if self.want.len() > limits.items_per_request {
            return Err(too_large(LimitExceeded {
                limit: "items_per_request",
                what: "`want` in `acquire`".into(),
                unit: "items",
                actual: self.want.len(),
                max: limits.items_per_request,
            }));
        }
        for (i, want) in self.want.iter().enumerate() {
            let item = i + 1;
            limits
                .check_name(&want.pool, || format!("`pool` of item {item} in `acquire`"))
                .map_err(too_large)?;
            if want.count == 0 {
                return Err(ProtocolError::bad_request(
                    id(),
                    format!(
                        "`count` of item {item} (pool `{}`) in `acquire` must be at least 1",
                        want.pool
                    ),
                ));
            }
            if want.count > limits.count_per_item {
                return Err(ProtocolError::too_large(
                    id(),
                    format!(
                        "`count` of item {item} (pool `{}`) in `acquire` is {}; at most {} is \
                         allowed (`limits.count_per_item`)",
                        want.pool, want.count, limits.count_per_item
                    ),
                ));
            }
            limits
                .check_labels(
                    &want.labels,
                    &format!("item {item} (pool `{}`) in `acquire`", want.pool),
                )
                .map_err(too_large)?;
        }
        if let Some(note) = &self.note {
            limits
                .check_note(note, || "`note` in `acquire`".into())
                .map_err(too_large)?;
        }
        Ok(())
    }
}

fn fields<T: DeserializeOwned>(
    rest: Value,
    ty: &str,
    id: &Option<RequestId>,
) -> Result<T, ProtocolError> {
    T::deserialize(rest)
        .map_err(|e| ProtocolError::bad_request(id.clone(), format!("{e} in `{ty}`")))
}

/// "an array", "a string", ... for error messages about the shape of a value.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first key that appears twice in one object of the JSON `text`, at any depth; `None`
/// when every key is unique or the text is not JSON (its parse then says what is wrong).
///
/// For JSON read elsewhere than in frames (the admin API's bodies), which must refuse
/// `{"labels":{"k":"1","k":"2"}}` as frames do rather than keep the last value.
pub fn repeated_key(text: &str) -> Option<String> {
    strict::parse(text).ok().and_then(|(_, repeated)| repeated)
}

/// JSON text to a [`Value`], noticing keys that appear twice in an object.
///
/// `serde_json` keeps the last of two equal keys without a word, so `"id":1,"id":2` would be
/// an acquire with id 2, while the typed parse refuses it: the strict protocol refuses it
/// everywhere. The parse goes on past the first repeated key (keeping the first value), so
/// that a frame that is also not JSON says so first.
mod strict {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    use super::RefCell;

    /// The value, and the first key that appeared twice in one of its objects.
    pub(super) fn parse(text: &str) -> Result<(Value, Option<String>), serde_json::Error> {
        let repeated = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let value = Seed {
            repeated: &repeated,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok((value, repeated.into_inner()))
    }

    #[derive(Clone, Copy)]
    struct Seed<'a> {
        repeated: &'a RefCell<Option<String>>,
    }

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            // JSON text has no NaN or infinity, so this is always a number.
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(self)?;
                if object.contains_key(&key) {
                    self.repeated.borrow_mut().get_or_insert(key);
                } else {
                    object.insert(key, value);
                }
            }
            Ok(Value::Object(object))
        }
    }
}

/// The typed parse of well-formed frames, tried before the reference parser.
///
/// Every field of every message type is read into one flat struct, remembering for each
/// whether it was absent, `null` or present; the type then decides which combinations make a
/// message. Whatever this does not accept (a parse error, a duplicate key, a field the type
/// does not have, a `null` where the reference parser would refuse one) returns `None`, and
/// the reference parser answers instead, so the two cannot disagree: the property test below
/// checks that they do not.
mod fast {
    use serde::{Deserialize, Deserializer};

    use super::{Acquire, Cancel, ClientMessage, Ping, Release, Resume, Want};
    use crate::id::{LeaseId, RequestId, SessionId, strict_request_id};

    /// A request id held to the rule of [`strict_request_id`].
    struct StrictId(RequestId);

    impl<'de> Deserialize<'de> for StrictId {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            strict_request_id(deserializer).map(Self)
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Type {
        Acquire,
        Release,
        Cancel,
        Resume,
        Ping,
    }

    /// A field as it was sent.
    #[derive(Default)]
    enum Field<T> {
        #[default]
        Absent,
        Null,
        Present(T),
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            Ok(match Option::<T>::deserialize(deserializer)? {
                None => Self::Null,
                Some(value) => Self::Present(value),
            })
        }
    }

    impl<T> Field<T> {
        fn is_absent(&self) -> bool {
            matches!(self, Self::Absent)
        }

        /// A required field: present and not `null`.
        fn required(self) -> Option<T> {
            match self {
                Self::Present(value) => Some(value),
                Self::Absent | Self::Null => None,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Flat {
        #[serde(rename = "type")]
        ty: Type,
        #[serde(default)]
        id: Field<StrictId>,
        #[serde(default)]
        want: Field<Vec<Want>>,
        #[serde(default)]
        wait_ms: Field<u64>,
        #[serde(default)]
        priority: Field<i32>,
        #[serde(default)]
        note: Field<String>,
        #[serde(default)]
        lease: Field<LeaseId>,
        #[serde(default)]
        session: Field<SessionId>,
    }

    pub(super) fn parse(text: &str) -> Option<ClientMessage> {
        let flat: Flat = serde_json::from_str(text).ok()?;
        let Flat {
            ty,
            id,
            want,
            wait_ms,
            priority,
            note,
            lease,
            session,
        } = flat;
        // The fields only `acquire` has.
        let acquire_only =
            want.is_absent() && wait_ms.is_absent() && priority.is_absent() && note.is_absent();
        match ty {
            Type::Acquire if lease.is_absent() && session.is_absent() => {
                let priority = match priority {
                    Field::Absent => 0,
                    Field::Null => return None,
                    Field::Present(p) => p,
                };
                Some(ClientMessage::Acquire(Acquire {
                    id: id.required()?.0,
                    want: want.required()?,
                    // `Option` fields take `null` for absent, as serde does.
                    wait_ms: match wait_ms {
                        Field::Present(ms) => Some(ms),
                        Field::Absent | Field::Null => None,
                    },
                    priority,
                    note: match note {
                        Field::Present(note) => Some(note),
                        Field::Absent | Field::Null => None,
                    },
                }))
            }
            Type::Release if acquire_only && id.is_absent() && session.is_absent() => {
                Some(ClientMessage::Release(Release {
                    lease: lease.required()?,
                }))
            }
            Type::Cancel if acquire_only && lease.is_absent() && session.is_absent() => {
                Some(ClientMessage::Cancel(Cancel {
                    id: id.required()?.0,
                }))
            }
            Type::Resume if acquire_only && id.is_absent() && lease.is_absent() => {
                Some(ClientMessage::Resume(Resume {
                    session: session.required()?,
                }))
            }
            Type::Ping
                if acquire_only && id.is_absent() && lease.is_absent() && session.is_absent() =>
            {
                Some(ClientMessage::Ping(Ping {}))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{ClientMessage, Limits};

    /// A JSON value for some field: right for some keys, wrong for others.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("0".to_owned()),
            Just("-3".to_owned()),
            Just("7.5".to_owned()),
            // Numbers a float would not give back as written.
            Just("1e3".to_owned()),
            Just("-0".to_owned()),
            Just("1.0".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("-9223372036854775809".to_owned()),
            Just("12345678901234567890123".to_owned()),
            Just(r#""x""#.to_owned()),
            Just(r#""l-1""#.to_owned()),
            Just(r#""long-id-over-the-small-limit""#.to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#"{"a":1,"a":2}"#.to_owned()),
            Just(r#"[{"pool":"p"}]"#.to_owned()),
            Just(r#"[{"pool":"p","count":2,"labels":{"a":"b"}}]"#.to_owned()),
            Just(r#"[{"pool":"p","count":0}]"#.to_owned()),
            Just(r#"[{"pool":"p","count":10001}]"#.to_owned()),
            Just(r#"[{"pool":"p","pool":"q"}]"#.to_owned()),
            Just(r#"[{"pool":"p","extra":1}]"#.to_owned()),
            Just(r#"[{"pool":"p","labels":{"a":"b","a":"c"}}]"#.to_owned()),
            Just(r#"[{"pool":"p","labels":{"a":"b","c":"d","e":"f"}}]"#.to_owned()),
            Just(r#"[{"pool":"a-long-pool-name"}]"#.to_owned()),
            Just(r#"[{"pool":"p"},{"pool":"q"},{"pool":"r"}]"#.to_owned()),
            Just(r#"[{"pool":"p","count":null}]"#.to_owned()),
        ]
    }

    /// Limits small enough that the values above cross them.
    fn small() -> Limits {
        Limits {
            items_per_request: 2,
            id_chars: 8,
            note_chars: 2,
            name_chars: 4,
            label_count: 2,
            label_chars: 1,
            ..Limits::default()
        }
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "type", "id", "want", "wait_ms", "priority", "note", "lease", "session", "other",
        ])
    }

    /// A valid message of each type, as `(key, value)` pairs.
    fn valid() -> impl Strategy<Value = Vec<(&'static str, String)>> {
        let acquire = (
            prop::option::of(value()),
            prop::option::of(value()),
            prop::option::of(value()),
        )
            .prop_map(|(wait_ms, priority, note)| {
                let mut fields = vec![
                    ("type", r#""acquire""#.to_owned()),
                    ("id", "1".to_owned()),
                    ("want", r#"[{"pool":"p"}]"#.to_owned()),
                ];
                fields.extend(wait_ms.map(|v| ("wait_ms", v)));
                fields.extend(priority.map(|v| ("priority", v)));
                fields.extend(note.map(|v| ("note", v)));
                fields
            });
        prop_oneof![
            acquire,
            Just(vec![
                ("type", r#""release""#.to_owned()),
                ("lease", r#""l-1""#.to_owned())
            ]),
            Just(vec![
                ("type", r#""cancel""#.to_owned()),
                ("id", r#""x""#.to_owned())
            ]),
            Just(vec![
                ("type", r#""resume""#.to_owned()),
                ("session", r#""s""#.to_owned())
            ]),
            Just(vec![("type", r#""ping""#.to_owned())]),
            Just(vec![("type", r#""pong""#.to_owned())]),
        ]
    }

    /// A change to a valid message: a field added (perhaps again), replaced by `null`, or
    /// removed.
    #[derive(Debug, Clone)]
    enum Edit {
        Add(&'static str, String),
        Null(usize),
        Remove(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (key(), value()).prop_map(|(k, v)| Edit::Add(k, v)),
            any::<usize>().prop_map(Edit::Null),
            any::<usize>().prop_map(Edit::Remove),
        ]
    }

    /// Valid messages, untouched or with a few edits, their keys in any order; now and then
    /// not an object at all.
    fn frame() -> impl Strategy<Value = String> {
        let object = (valid(), prop::collection::vec(edit(), 0..3))
            .prop_map(|(mut fields, edits)| {
                for edit in edits {
                    match edit {
                        Edit::Add(k, v) => fields.push((k, v)),
                        Edit::Null(i) if !fields.is_empty() => {
                            let i = i % fields.len();
                            fields[i].1 = "null".to_owned();
                        }
                        Edit::Remove(i) if !fields.is_empty() => {
                            fields.remove(i % fields.len());
                        }
                        Edit::Null(_) | Edit::Remove(_) => {}
                    }
                }
                fields
            })
            .prop_shuffle()
            .prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            });
        prop_oneof![9 => object, 1 => value()]
    }

    /// The number of cases: `SUMMONER_FUZZ_CASES`, else `PROPTEST_CASES`, else `default`
    /// (see docs/fuzzing.md).
    fn cases(default: u32) -> u32 {
        ["SUMMONER_FUZZ_CASES", "PROPTEST_CASES"]
            .iter()
            .find_map(|name| std::env::var(name).ok()?.parse().ok())
            .unwrap_or(default)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(4096)))]

        /// The fast path answers exactly as the reference parser does, message or error, with
        /// the default limits and with small ones.
        #[test]
        fn fast_path_agrees_with_the_reference(text in frame()) {
            for limits in [Limits::default(), small()] {
                let reference = ClientMessage::parse_slow(&text, &limits);
                let parsed = ClientMessage::parse_with(&text, &limits);
                prop_assert_eq!(parsed, reference, "{}", text);
            }
        }

        /// What is accepted is exact: the id comes back byte for byte as it was written, and
        /// the message reads back as itself.
        #[test]
        fn accepted_frames_are_echoed_exactly(text in frame()) {
            if let Ok(msg) = ClientMessage::parse(&text) {
                let id = match &msg {
                    ClientMessage::Acquire(a) => Some(&a.id),
                    ClientMessage::Cancel(c) => Some(&c.id),
                    _ => None,
                };
                if let Some(id) = id {
                    let echoed = serde_json::to_string(id).unwrap();
                    prop_assert!(text.contains(&format!("\"id\":{echoed}")), "{} {}", text, echoed);
                }
                prop_assert_eq!(ClientMessage::parse(&msg.to_json()), Ok(msg));
            }
        }

        /// The same for text that is JSON only by chance.
        #[test]
        fn fast_path_agrees_on_json_like_text(
            text in r#"\{("(type|id|want|pool|lease|ping|acquire)"|[\[\]{}",:0-9a-z .-]){0,60}\}?"#
        ) {
            let reference = ClientMessage::parse_slow(&text, &Limits::default());
            let parsed = ClientMessage::parse(&text);
            prop_assert_eq!(parsed, reference, "{}", text);
        }
    }

    /// The frames clients send most do take the fast path.
    #[test]
    fn common_frames_take_the_fast_path() {
        for text in [
            r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}]}"#,
            r#"{"id":"job-1","type":"acquire","want":[{"pool":"boards","count":2,"labels":{"arch":"arm64"}}],"wait_ms":5000,"priority":1,"note":"ci"}"#,
            r#"{"type":"release","lease":"l-1"}"#,
            r#"{"type":"cancel","id":3}"#,
            r#"{"type":"resume","session":"s"}"#,
            r#"{"type":"ping"}"#,
        ] {
            assert!(super::fast::parse(text).is_some(), "{text}");
        }
    }
}

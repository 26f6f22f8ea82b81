//! Messages from a client to the server, and the strict parser the server uses for them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProtocolError;
use crate::id::{LeaseId, RequestId, SessionId};
use crate::limits::{MAX_COUNT, MAX_FRAME_BYTES, MAX_ITEMS, MAX_NOTE_CHARS};
use crate::prop::Labels;

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
    /// Chosen by the client, echoed in every reply about this request.
    pub id: RequestId,
    /// What is wanted, all or nothing.
    pub want: Vec<Want>,
    /// How long to wait: absent waits for ever, 0 fails at once with `timeout` unless the
    /// request can be granted immediately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Higher is served first; requests of equal priority are served in arrival order.
    /// Negative values are allowed (served after the default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Free text shown next to the request and the lease in the dashboard (e.g. the job URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One item of an `acquire`: `count` distinct resources of `pool` whose labels include all of
/// `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Want {
    /// The pool's name.
    pub pool: String,
    /// How many distinct resources; 1 when absent.
    #[serde(default = "one")]
    pub count: u32,
    /// Labels a resource must have (with these values) to be chosen; none when absent.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
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
    /// Parses one text frame, checking the limits, with errors a client developer can act on
    /// ("missing field `want` in `acquire`"). The error carries the request `id` when the
    /// frame had one, so the `error` reply can echo it.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(ProtocolError::too_large(
                None,
                format!(
                    "frame of {} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes",
                    text.len()
                ),
            ));
        }
        // Going through `Value` costs a little, but lets us find the `id` and the `type`
        // before the shape is checked, which is what makes the errors precise.
        let value: Value = serde_json::from_str(text)
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
        let id = map.get("id").and_then(RequestId::from_value);
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
                    format!("unknown message type `{ty}`; expected one of {TYPES}"),
                ));
            }
        };
        msg.validate()?;
        Ok(msg)
    }

    /// Checks the limits and the rules serde cannot express (a `count` of at least 1, a
    /// non-empty `want`). [`ClientMessage::parse`] calls it; the engine calls it again for
    /// messages built in code.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            Self::Acquire(acquire) => acquire.validate(),
            Self::Release(_) | Self::Cancel(_) | Self::Resume(_) | Self::Ping(_) => Ok(()),
        }
    }

    /// The JSON text of this message (what a client sends).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a client message always serializes")
    }
}

impl Acquire {
    /// See [`ClientMessage::validate`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let id = || Some(self.id.clone());
        if self.want.is_empty() {
            return Err(ProtocolError::bad_request(
                id(),
                "`want` in `acquire` must list at least one item",
            ));
        }
        if self.want.len() > MAX_ITEMS {
            return Err(ProtocolError::too_large(
                id(),
                format!(
                    "`want` in `acquire` has {} items; at most {MAX_ITEMS} are allowed",
                    self.want.len()
                ),
            ));
        }
        for (i, want) in self.want.iter().enumerate() {
            if want.count == 0 {
                return Err(ProtocolError::bad_request(
                    id(),
                    format!(
                        "`count` of item {} (pool `{}`) in `acquire` must be at least 1",
                        i + 1,
                        want.pool
                    ),
                ));
            }
            if want.count > MAX_COUNT {
                return Err(ProtocolError::too_large(
                    id(),
                    format!(
                        "`count` of item {} (pool `{}`) in `acquire` is {}; at most {MAX_COUNT} \
                         is allowed",
                        i + 1,
                        want.pool,
                        want.count
                    ),
                ));
            }
        }
        if let Some(note) = &self.note {
            let chars = note.chars().count();
            if chars > MAX_NOTE_CHARS {
                return Err(ProtocolError::too_large(
                    id(),
                    format!(
                        "`note` in `acquire` has {chars} characters; at most {MAX_NOTE_CHARS} \
                         are allowed"
                    ),
                ));
            }
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

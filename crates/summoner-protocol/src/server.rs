//! Messages from the server to a client.

use serde::{Deserialize, Serialize};

use crate::code::ErrorCode;
use crate::id::{LeaseId, RequestId, SessionId};
use crate::prop::{Labels, Props};

/// A message from the server.
///
/// Clients should ignore fields they do not know: the server may add optional fields within
/// protocol version 1. (The server, by contrast, refuses unknown fields in client messages.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message on every connection.
    Welcome(Welcome),
    /// The request waits; `position` is 1 for the next in line. Sent when the request joins
    /// the queue and again (at most about once a second) when the position changes.
    Queued(Queued),
    /// The request is granted: the lease and the resources it holds.
    Granted(Grant),
    /// The lease was released at the client's request.
    Released(Released),
    /// The lease was taken away (an admin, the pool's max hold time, a removed resource).
    Revoked(Revoked),
    /// The connection now continues the named session, with these leases.
    Resumed(Resumed),
    /// The waiting request was withdrawn at the client's request.
    Cancelled(Cancelled),
    /// Something went wrong; `id` names the request when there is one.
    Error(ErrorReply),
    /// The answer to `ping`.
    Pong(Pong),
}

/// `welcome {session, protocol, resume_grace_ms}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// This connection's session; keep it to `resume` after a reconnect.
    pub session: SessionId,
    /// The protocol version, [`crate::PROTOCOL_VERSION`].
    pub protocol: u32,
    /// For a resumable session (asked for with `?resumable=true`): how long its leases are
    /// kept after the connection drops, for a `resume`. Absent otherwise: the session ends
    /// with its connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_grace_ms: Option<u64>,
}

/// `queued {id, position}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The request's id.
    pub id: RequestId,
    /// 1-based: how many waiting requests that compete with this one are served first, plus 1.
    pub position: u64,
}

/// `granted {id, lease, resources}`; also one lease in `resumed {leases}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The id of the `acquire` this lease answers.
    pub id: RequestId,
    /// The lease, for `release`.
    pub lease: LeaseId,
    /// The resources, in the order of the `want` items (and within an item, in pool order).
    pub resources: Vec<GrantedResource>,
}

/// One resource of a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantedResource {
    /// The pool it belongs to.
    pub pool: String,
    /// Its name, unique within the pool.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
    /// Its properties: what the holder needs to use it.
    #[serde(default)]
    pub props: Props,
}

/// `released {lease}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The lease that is no longer held.
    pub lease: LeaseId,
}

/// `revoked {lease, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The lease that is no longer held.
    pub lease: LeaseId,
    /// Why, for people: "released by admin", "max hold time 10m exceeded".
    pub reason: String,
}

/// `resumed {session, leases}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// The session this connection now is (the one named in `resume`).
    pub session: SessionId,
    /// The leases the session still holds. Requests that were waiting when the connection
    /// dropped are gone and must be sent again.
    pub leases: Vec<Grant>,
}

/// `cancelled {id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    /// The id of the withdrawn request.
    pub id: RequestId,
}

/// `error {id?, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The request this error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// What kind of error, for programs.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

/// `pong {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {}

impl ServerMessage {
    /// An `error` message.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorReply {
            id,
            code,
            message: message.into(),
        })
    }

    /// The JSON text of this message, as sent in one text frame.
    pub fn to_json(&self) -> String {
        // Every field serializes infallibly: string map keys, finite numbers, plain enums.
        serde_json::to_string(self).expect("a server message always serializes")
    }

    /// Parses a frame from the server (what a client does). Unknown fields are ignored.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

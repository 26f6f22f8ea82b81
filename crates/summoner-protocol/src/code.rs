//! The codes of `error {id?, code, message}`: what a client branches on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `code` of an `error` message. Clients branch on the code; the `message` is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a valid message: not JSON, an unknown `type`, a missing or mistyped
    /// field, a `count` of 0. The connection stays usable.
    BadRequest,
    /// No valid token. Sent before the server closes the connection.
    Unauthorized,
    /// An `acquire` names a pool that does not exist (or was removed while it waited).
    UnknownPool,
    /// An `acquire` wants more than could ever be granted, even with every resource free.
    Unsatisfiable,
    /// An `acquire`'s `wait_ms` ran out (or was 0 and nothing was free).
    Timeout,
    /// A `release` names a lease this session does not hold.
    UnknownLease,
    /// A `cancel` names no waiting request of this session.
    UnknownRequest,
    /// A `resume` names a session that does not exist or whose grace period has ended.
    UnknownSession,
    /// An `acquire` reuses the id of a request of this session that is still waiting.
    DuplicateId,
    /// The frame or one of its fields exceeds a limit (see [`crate::MAX_FRAME_BYTES`] and
    /// friends).
    TooLarge,
    /// A bug or an unexpected state in the server. The message says what happened.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the docs list them.
    pub const ALL: [ErrorCode; 11] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::UnknownPool,
        Self::Unsatisfiable,
        Self::Timeout,
        Self::UnknownLease,
        Self::UnknownRequest,
        Self::UnknownSession,
        Self::DuplicateId,
        Self::TooLarge,
        Self::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::UnknownPool => "unknown_pool",
            Self::Unsatisfiable => "unsatisfiable",
            Self::Timeout => "timeout",
            Self::UnknownLease => "unknown_lease",
            Self::UnknownRequest => "unknown_request",
            Self::UnknownSession => "unknown_session",
            Self::DuplicateId => "duplicate_id",
            Self::TooLarge => "too_large",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

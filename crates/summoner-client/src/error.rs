//! What can go wrong: the server's error codes, and the connection's own failures.

use summoner_protocol::{ErrorCode, ErrorReply};

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
///
/// The variants named after the protocol's error codes carry the server's message, which says
/// what to change ("pool `gpus` has 2 resources matching ..., 3 wanted"); [`Error::code`]
/// gives the code itself for programs that branch on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server URL could not be understood.
    #[error("invalid server url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made to the server (refused, unreachable, not a summoner
    /// server).
    #[error("cannot connect to the summoner server at {url}")]
    Connect {
        /// The WebSocket URL that was tried.
        url: String,
        /// The underlying failure.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The connection was lost and could not be resumed; leases held on it are gone (the
    /// server releases them when its resume grace ends).
    #[error("lost the connection to the summoner server at {url}: {reason}")]
    ConnectionLost {
        /// The WebSocket URL.
        url: String,
        /// Why it was lost and why resuming failed.
        reason: String,
    },
    /// The client was closed (or dropped) while the call was in flight.
    #[error("the client is closed")]
    Closed,
    /// The server sent something this client does not understand.
    #[error("unexpected message from the server: {0}")]
    Protocol(String),

    /// `bad_request`: the server did not accept a message (a bug in this client, or a
    /// request outside the protocol's limits).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `unauthorized`: no valid token (`Authorization: Bearer`), or one without the role
    /// needed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// `unknown_pool`: a requested pool does not exist. (The server's message already
    /// names the pool and the ones that exist.)
    #[error("{0}")]
    UnknownPool(String),
    /// `unsatisfiable`: more was asked than could ever be granted, even with every resource
    /// free.
    #[error("unsatisfiable: {0}")]
    Unsatisfiable(String),
    /// `timeout`: the request's wait ran out before it could be granted.
    #[error("timed out: {0}")]
    Timeout(String),
    /// `unknown_lease`: the lease is not held by this session.
    #[error("unknown lease: {0}")]
    UnknownLease(String),
    /// `unknown_request`: no waiting request has this id.
    #[error("unknown request: {0}")]
    UnknownRequest(String),
    /// `unknown_session`: the session to resume is gone.
    #[error("unknown session: {0}")]
    UnknownSession(String),
    /// `duplicate_id`: a request with this id is already waiting.
    #[error("duplicate request id: {0}")]
    DuplicateId(String),
    /// `too_large`: a message or a field exceeds the protocol's limits.
    #[error("too large: {0}")]
    TooLarge(String),
    /// `internal`: the server failed (its log says more).
    #[error("server error: {0}")]
    Internal(String),
}

impl Error {
    /// The protocol error code, for errors that came from the server.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::UnknownPool(_) => ErrorCode::UnknownPool,
            Self::Unsatisfiable(_) => ErrorCode::Unsatisfiable,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::UnknownLease(_) => ErrorCode::UnknownLease,
            Self::UnknownRequest(_) => ErrorCode::UnknownRequest,
            Self::UnknownSession(_) => ErrorCode::UnknownSession,
            Self::DuplicateId(_) => ErrorCode::DuplicateId,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Internal(_) => ErrorCode::Internal,
            _ => return None,
        })
    }

    /// The error for an `error {code, message}` from the server.
    pub fn from_reply(reply: &ErrorReply) -> Self {
        Self::from_code(reply.code, reply.message.clone())
    }

    pub(crate) fn from_code(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::BadRequest => Self::BadRequest(message),
            ErrorCode::Unauthorized => Self::Unauthorized(message),
            ErrorCode::UnknownPool => Self::UnknownPool(message),
            ErrorCode::Unsatisfiable => Self::Unsatisfiable(message),
            ErrorCode::Timeout => Self::Timeout(message),
            ErrorCode::UnknownLease => Self::UnknownLease(message),
            ErrorCode::UnknownRequest => Self::UnknownRequest(message),
            ErrorCode::UnknownSession => Self::UnknownSession(message),
            ErrorCode::DuplicateId => Self::DuplicateId(message),
            ErrorCode::TooLarge => Self::TooLarge(message),
            ErrorCode::Internal => Self::Internal(message),
        }
    }

    /// Errors worth retrying with the same request later: connection trouble, not a refusal.
    pub fn is_connection(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::ConnectionLost { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in ErrorCode::ALL {
            let err = Error::from_code(code, "m".into());
            assert_eq!(err.code(), Some(code));
        }
    }

    #[test]
    fn messages_are_lowercase_and_carry_the_server_text() {
        let err = Error::from_code(ErrorCode::Unsatisfiable, "pool `ports` has 2".into());
        assert_eq!(err.to_string(), "unsatisfiable: pool `ports` has 2");
        let err = Error::from_code(
            ErrorCode::Timeout,
            "no grant within `wait_ms` (200 ms)".into(),
        );
        assert_eq!(
            err.to_string(),
            "timed out: no grant within `wait_ms` (200 ms)"
        );
    }
}

//! The parse error of a client frame, which carries an error code.

use crate::code::ErrorCode;
use crate::id::RequestId;
use crate::server::{ErrorReply, ServerMessage};

/// Why a frame could not be turned into a [`crate::ClientMessage`]: a code, a message written
/// for the developer of the client, and the request `id` when one could be read from the
/// frame, so that the `error` reply can be matched to the request that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// `bad_request` or `too_large`.
    pub code: ErrorCode,
    /// What is wrong, e.g. "missing field `want` in `acquire`".
    pub message: String,
    /// The `id` of the offending request, if the frame had a usable one.
    pub id: Option<RequestId>,
}

impl ProtocolError {
    /// A `bad_request` error.
    pub fn bad_request(id: Option<RequestId>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
            id,
        }
    }

    /// A `too_large` error.
    pub fn too_large(id: Option<RequestId>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::TooLarge,
            message: message.into(),
            id,
        }
    }

    /// The `error` message to send back.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error(ErrorReply {
            id: self.id.clone(),
            code: self.code,
            message: self.message.clone(),
        })
    }
}

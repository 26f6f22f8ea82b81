//! What can go wrong: what stops the server ([`ServerError`]), the broker loop being gone
//! ([`Gone`]), and what an HTTP request is answered when it fails ([`ApiError`], and
//! [`json_errors`] for the answers that axum makes itself).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::PathBuf;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use summoner_broker::AdminError;
use summoner_protocol::api::{self, ApiErrorCode};

use crate::auth::Denied;
use crate::config::ConfigError;
use crate::mark::JournalDamage;
use crate::store::StoreError;

/// Why [`crate::serve`] failed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config is invalid (see [`crate::ServerConfig::check`]).
    #[error("invalid config")]
    Config(#[from] ConfigError),
    /// The journal could not be opened, migrated or read at start.
    #[error("cannot use the journal in {dir}")]
    Store {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The journal was found damaged or gone back in time at start (see `mark.rs`), and
    /// `accept_journal_loss` was not set. Serving from it could grant again leases that their
    /// holders still use.
    #[error("{0}.\n{advice}", advice = .0.advice())]
    JournalDamaged(JournalDamage),
    /// The pools, after replaying the journal's run-time changes, are invalid.
    #[error("the pools cannot be restored")]
    Inventory(#[source] summoner_broker::ConfigError),
    /// A journal write failed while serving; the server stopped (see `docs/server.md`).
    #[error("the journal could not be written; the server stopped")]
    Journal(#[source] StoreError),
    /// The listener failed.
    #[error("cannot serve HTTP")]
    Io(#[from] std::io::Error),
}

/// An error and its causes on one line, for logs: `a: b: c`.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let _ = write!(out, ": {e}");
        source = e.source();
    }
    out
}

/// The broker loop has stopped (the server is shutting down).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

/// What a caller without a valid token is told, over HTTP and before a WebSocket upgrade.
pub(crate) const TOKEN_REQUIRED: &str =
    "a valid token is required: `Authorization: Bearer TOKEN` or `?token=TOKEN`";

/// An error answer of the HTTP API: `{code, message}`, with the status its code implies.
#[derive(Debug)]
pub(crate) struct ApiError(api::ApiError);

impl ApiError {
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self(api::ApiError {
            code,
            message: message.into(),
        })
    }

    pub fn denied(denied: Denied) -> Self {
        match denied {
            Denied::Unauthorized => Self::new(ApiErrorCode::Unauthorized, TOKEN_REQUIRED),
            Denied::Forbidden => Self::new(
                ApiErrorCode::Forbidden,
                "this token's role is `client`; this endpoint needs an `admin` token",
            ),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::BadRequest, message)
    }

    pub fn unavailable() -> Self {
        Self::new(ApiErrorCode::Unavailable, "the server is stopping")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Internal, message)
    }
}

impl From<Gone> for ApiError {
    fn from(_: Gone) -> Self {
        Self::unavailable()
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        let code = match &err {
            AdminError::UnknownPool(_) => ApiErrorCode::UnknownPool,
            AdminError::UnknownResource { .. } => ApiErrorCode::UnknownResource,
            AdminError::UnknownLease(_) => ApiErrorCode::UnknownLease,
            AdminError::PoolExists(_) | AdminError::ResourceExists { .. } => {
                ApiErrorCode::AlreadyExists
            }
            AdminError::Invalid(_) => ApiErrorCode::Invalid,
        };
        Self::new(code, err.to_string())
    }
}

impl ApiError {
    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.status())
            .expect("every API error code has a valid HTTP status")
    }
}

/// A name, label, prop or reason over its limit: 413, and the message names the limit.
impl From<summoner_protocol::LimitExceeded> for ApiError {
    fn from(err: summoner_protocol::LimitExceeded) -> Self {
        Self::new(ApiErrorCode::TooLarge, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.0)).into_response()
    }
}

/// Answers every error as `{code, message}`, also those that no handler of ours wrote: a
/// method the route does not take (405, empty), and the rejections of axum's extractors
/// (a WebSocket handshake without its headers, a path segment that is not UTF-8), which are
/// plain text. Their text becomes the message, and the code follows the status
/// ([`ApiErrorCode::for_status`]); the status and the other headers stay.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let Some(code) = ApiErrorCode::for_status(status.as_u16()) else {
        return response;
    };
    if is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Rejections say a sentence; anything longer is not worth relaying.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds the `Allow` header after this layer has run.
        format!("this endpoint does not take {method}; the `Allow` header says what it takes")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&api::ApiError { code, message })
        .expect("an API error always serializes");
    Response::from_parts(parts, body.into())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

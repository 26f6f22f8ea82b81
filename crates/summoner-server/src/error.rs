//! What can go wrong: what stops the server ([`ServerError`]), the broker loop being gone
//! ([`Gone`]), and what an HTTP request is answered when it fails ([`ApiError`]).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
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
            Denied::Unauthorized => Self::new(
                ApiErrorCode::Unauthorized,
                "a valid token is required: `Authorization: Bearer TOKEN` or `?token=TOKEN`",
            ),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.status())
            .expect("every API error code has a valid HTTP status");
        (status, Json(self.0)).into_response()
    }
}

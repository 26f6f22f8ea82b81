//! The HTTP JSON API: what the broker holds, who waits, the audit history, metrics, and the
//! admin changes.
//!
//! Handlers check the caller, validate the request and hand it to the broker loop (reads as
//! closures over the engine, changes as [`Change`]s); the journal's history is read straight
//! from SQLite's read-only connections. Errors are JSON `{code, message}` with a status that
//! matches. Session ids are shown shortened (see [`crate::session_id::short`]): the full id is
//! what `resume` needs, so it is only ever told to the client that owns it.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use summoner_broker::{
    AdminError, AdminOp, LeaseView, PoolConfig, ResourceConfig, ResourceView, WaiterView,
};
use summoner_protocol::LeaseId;

use crate::auth::Denied;
use crate::clock;
use crate::hub::{Change, Gone, ResourcePatch};
use crate::server::AppState;
use crate::session_id::short;
use crate::store;

/// An error answer: `{code, message}` with an HTTP status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn denied(denied: Denied) -> Self {
        match denied {
            Denied::Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid token is required: `Authorization: Bearer TOKEN` or `?token=TOKEN`",
            ),
            Denied::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token's role is `client`; this endpoint needs an `admin` token",
            ),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is stopping",
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<Gone> for ApiError {
    fn from(_: Gone) -> Self {
        Self::unavailable()
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        let (status, code) = match &err {
            AdminError::UnknownPool(_) => (StatusCode::NOT_FOUND, "unknown_pool"),
            AdminError::UnknownResource { .. } => (StatusCode::NOT_FOUND, "unknown_resource"),
            AdminError::UnknownLease(_) => (StatusCode::NOT_FOUND, "unknown_lease"),
            AdminError::PoolExists(_) | AdminError::ResourceExists { .. } => {
                (StatusCode::CONFLICT, "already_exists")
            }
            AdminError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        };
        Self::new(status, code, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// The token as a query parameter (`?token=T`), for clients that cannot set headers.
#[derive(Debug, Default, Deserialize)]
struct TokenParam {
    token: Option<String>,
}

fn query_token(parts: &Parts) -> Option<String> {
    Query::<TokenParam>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.token)
}

/// A caller allowed to read: any token, or none on an open server.
pub(crate) struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        app.auth
            .caller(&parts.headers, query_token(parts).as_deref())
            .map_err(ApiError::denied)?;
        Ok(Self)
    }
}

/// A caller allowed to change things: an admin token, or none on an open server.
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        app.auth
            .admin(&parts.headers, query_token(parts).as_deref())
            .map_err(ApiError::denied)?;
        Ok(Self)
    }
}

/// JSON with session ids shortened, fields in their declared order.
fn redacted<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let text = serde_json::to_string(value).expect("views always serialize");
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        redact(&text),
    )
        .into_response()
}

/// Shortens the value of every `"session"` and `"connection"` field in compact JSON text.
///
/// Working on the text rather than on a `serde_json::Value` keeps the fields in the order the
/// types declare them (a `Value` would sort them). The pattern cannot match inside a string,
/// because quotes inside strings are escaped.
fn redact(json: &str) -> String {
    const KEYS: [&str; 2] = ["\"session\":\"", "\"connection\":\""];
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    loop {
        let next = KEYS
            .iter()
            .filter_map(|key| rest.find(key).map(|at| (at, key.len())))
            .min();
        let Some((at, len)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        // The string's content runs to the first unescaped quote.
        let mut end = rest.len();
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let value = &rest[..end];
        out.push_str(if value.contains('\\') {
            value
        } else {
            short(value)
        });
        rest = &rest[end..];
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `GET /healthz`: 200 while the broker loop answers. Needs no token, for load balancers.
pub(crate) async fn healthz(State(app): State<AppState>) -> Response {
    match app.hub.query(|broker, _| broker.next_seq()).await {
        Ok(next_seq) => Json(json!({"status": "ok", "next_seq": next_seq})).into_response(),
        Err(Gone) => ApiError::unavailable().into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(_: Reader, State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app
        .hub
        .query(|broker, metrics| metrics.render(&broker.stats()))
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /v1/pools`.
pub(crate) async fn pools(_: Reader, State(app): State<AppState>) -> Result<Response, ApiError> {
    let pools = app.hub.query(|broker, _| broker.pools()).await?;
    Ok(redacted(StatusCode::OK, &json!({ "pools": pools })))
}

/// `GET /v1/pools/{pool}`.
pub(crate) async fn pool(
    _: Reader,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let wanted = name.clone();
    match app.hub.query(move |broker, _| broker.pool(&wanted)).await? {
        Some(pool) => Ok(redacted(StatusCode::OK, &pool)),
        None => Err(AdminError::UnknownPool(name).into()),
    }
}

/// A lease with its age.
#[derive(Serialize)]
struct LeaseOut {
    #[serde(flatten)]
    lease: LeaseView,
    /// How long it has been held (since it was granted or restored).
    held_ms: u64,
    /// When its pool's max hold time revokes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoke_in_ms: Option<u64>,
}

/// `GET /v1/leases`.
pub(crate) async fn leases(_: Reader, State(app): State<AppState>) -> Result<Response, ApiError> {
    let leases = app
        .hub
        .query(|broker, _| {
            let now = engine_now();
            broker
                .leases()
                .into_iter()
                .map(|lease| LeaseOut {
                    held_ms: millis(now.saturating_duration_since(lease.granted_at)),
                    revoke_in_ms: lease
                        .revoke_at
                        .map(|at| millis(at.saturating_duration_since(now))),
                    lease,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(redacted(StatusCode::OK, &json!({ "leases": leases })))
}

/// A waiting request with its age.
#[derive(Serialize)]
struct WaiterOut {
    #[serde(flatten)]
    waiter: WaiterView,
    /// How long it has waited.
    waited_ms: u64,
    /// When its `wait_ms` runs out.
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_in_ms: Option<u64>,
}

/// `GET /v1/queue`: every waiting request, in service order.
pub(crate) async fn queue(_: Reader, State(app): State<AppState>) -> Result<Response, ApiError> {
    let queue = app
        .hub
        .query(|broker, _| {
            let now = engine_now();
            broker
                .queue()
                .into_iter()
                .map(|waiter| WaiterOut {
                    waited_ms: millis(now.saturating_duration_since(waiter.since)),
                    timeout_in_ms: waiter
                        .deadline
                        .map(|at| millis(at.saturating_duration_since(now))),
                    waiter,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(redacted(StatusCode::OK, &json!({ "queue": queue })))
}

/// The engine's clock (tokio's, so that paused test time applies).
fn engine_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsParams {
    /// Only events with a larger sequence number.
    #[serde(default)]
    after: u64,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

/// The largest page of `GET /v1/events`.
const MAX_EVENTS_PAGE: u32 = 1000;

/// `GET /v1/events?after=N&limit=M`: the audit history, oldest first.
pub(crate) async fn events(
    _: Reader,
    State(app): State<AppState>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_EVENTS_PAGE);
    let events = clock::hold(store::events_after(&app.readers, params.after, limit))
        .await
        .map_err(|e| ApiError::internal(crate::error::chain(&e)))?;
    let next_after = events.last().map_or(params.after, |e| e.event.seq);
    Ok(redacted(
        StatusCode::OK,
        &json!({ "events": events, "next_after": next_after }),
    ))
}

/// Applies an admin change and waits until it is durable.
async fn change(app: &AppState, change: Change) -> Result<(), ApiError> {
    app.hub.admin(change).await??;
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    /// Added to what the holder is told.
    reason: Option<String>,
}

/// `POST /v1/leases/{lease}/revoke` with an optional `{"reason": "..."}`: force release.
pub(crate) async fn revoke(
    _: Admin,
    State(app): State<AppState>,
    Path(lease): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let RevokeBody { reason } = if bytes.iter().all(u8::is_ascii_whitespace) {
        RevokeBody::default()
    } else {
        body(&bytes)?
    };
    change(
        &app,
        Change::Op(AdminOp::Revoke {
            lease: LeaseId(lease),
            reason,
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools` with a pool (as in the config): add a pool.
pub(crate) async fn add_pool(
    _: Admin,
    State(app): State<AppState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let pool: PoolConfig = body(&bytes)?;
    let name = pool.name.clone();
    change(&app, Change::Op(AdminOp::AddPool { pool })).await?;
    let view = app.hub.query(move |broker, _| broker.pool(&name)).await?;
    Ok(redacted(StatusCode::CREATED, &view))
}

/// `DELETE /v1/pools/{pool}`: revokes its leases, refuses its waiters, removes it.
pub(crate) async fn remove_pool(
    _: Admin,
    State(app): State<AppState>,
    Path(pool): Path<String>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::RemovePool { pool })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources` with a resource: add it.
pub(crate) async fn add_resource(
    _: Admin,
    State(app): State<AppState>,
    Path(pool): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let resource: ResourceConfig = body(&bytes)?;
    let name = resource.name.clone();
    change(
        &app,
        Change::Op(AdminOp::AddResource {
            pool: pool.clone(),
            resource,
        }),
    )
    .await?;
    resource_view(&app, pool, name, StatusCode::CREATED).await
}

/// `PATCH /v1/pools/{pool}/resources/{name}` with any of `labels`, `props`, `capacity`,
/// `enabled`.
pub(crate) async fn patch_resource(
    _: Admin,
    State(app): State<AppState>,
    Path((pool, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let patch: ResourcePatch = body(&bytes)?;
    change(
        &app,
        Change::Patch {
            pool: pool.clone(),
            name: name.clone(),
            patch,
        },
    )
    .await?;
    resource_view(&app, pool, name, StatusCode::OK).await
}

/// `DELETE /v1/pools/{pool}/resources/{name}`: revokes its leases, removes it.
pub(crate) async fn remove_resource(
    _: Admin,
    State(app): State<AppState>,
    Path((pool, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::RemoveResource { pool, resource })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources/{name}/disable`: not granted again until enabled; its
/// holders keep it.
pub(crate) async fn disable(
    _: Admin,
    State(app): State<AppState>,
    Path((pool, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::Disable { pool, resource })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources/{name}/enable`.
pub(crate) async fn enable(
    _: Admin,
    State(app): State<AppState>,
    Path((pool, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::Enable { pool, resource })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resource_view(
    app: &AppState,
    pool: String,
    name: String,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let found: Option<ResourceView> = app
        .hub
        .query(move |broker, _| {
            broker
                .pool(&pool)
                .and_then(|p| p.resources.into_iter().find(|r| r.name == name))
        })
        .await?;
    match found {
        Some(view) => Ok(redacted(status, &view)),
        // Removed again between the change and this read: say what was done.
        None => Ok(status.into_response()),
    }
}

/// Anything else.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn shortens_session_ids_only() {
        let json = r#"{"lease":"lease-1","session":"0123456789abcdef0123456789abcdef","x":[{"connection":"fedcba9876543210fedcba9876543210","note":"say \"session\":\"x\""}]}"#;
        assert_eq!(
            redact(json),
            r#"{"lease":"lease-1","session":"0123456789ab","x":[{"connection":"fedcba987654","note":"say \"session\":\"x\""}]}"#
        );
        assert_eq!(redact(r#"{"session":"s1"}"#), r#"{"session":"s1"}"#);
    }
}

//! The HTTP JSON API: what the broker holds, who waits, the audit history, metrics, and the
//! admin changes.
//!
//! Handlers check the caller, validate the request and hand it to the broker loop (reads as
//! closures over the engine, changes as [`Change`]s); the journal's history is read straight
//! from SQLite's read-only connections. Answers are the types of [`summoner_protocol::api`],
//! built in `view.rs` (which shortens session ids); errors are [`ApiError`]s, JSON
//! `{code, message}` with a status that matches.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use summoner_broker::{AdminError, AdminOp, PoolConfig, ResourceConfig};
use summoner_protocol::LeaseId;
use summoner_protocol::api::{self, ApiErrorCode};

use crate::clock;
use crate::error::{ApiError, Gone};
use crate::hub::{Change, ResourcePatch};
use crate::state::AppState;
use crate::store;
use crate::view;

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

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// `GET /healthz`: 200 while the broker loop answers. Needs no token, for load balancers.
pub(crate) async fn healthz(State(app): State<AppState>) -> Response {
    match app.hub.query(|broker, _| broker.next_seq()).await {
        Ok(next_seq) => Json(api::Health {
            status: api::HealthStatus::Ok,
            next_seq,
        })
        .into_response(),
        Err(Gone) => ApiError::unavailable().into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(_: Reader, State(app): State<AppState>) -> Result<Response, ApiError> {
    let mut text = app
        .hub
        .query(|broker, metrics| metrics.render(&broker.stats()))
        .await?;
    app.connections.render(&mut text);
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
pub(crate) async fn pools(
    _: Reader,
    State(app): State<AppState>,
) -> Result<Json<api::Pools>, ApiError> {
    let pools = app.hub.query(|broker, _| broker.pools()).await?;
    Ok(Json(api::Pools {
        pools: pools.into_iter().map(view::pool).collect(),
    }))
}

/// `GET /v1/pools/{pool}`.
pub(crate) async fn pool(
    _: Reader,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<api::Pool>, ApiError> {
    let wanted = name.clone();
    match app.hub.query(move |broker, _| broker.pool(&wanted)).await? {
        Some(pool) => Ok(Json(view::pool(pool))),
        None => Err(AdminError::UnknownPool(name).into()),
    }
}

/// `GET /v1/leases`.
pub(crate) async fn leases(
    _: Reader,
    State(app): State<AppState>,
) -> Result<Json<api::Leases>, ApiError> {
    let (now, leases) = app
        .hub
        .query(|broker, _| (engine_now(), broker.leases()))
        .await?;
    Ok(Json(api::Leases {
        leases: leases.into_iter().map(|l| view::lease(l, now)).collect(),
    }))
}

/// `GET /v1/queue`: every waiting request, in service order.
pub(crate) async fn queue(
    _: Reader,
    State(app): State<AppState>,
) -> Result<Json<api::Queue>, ApiError> {
    let (now, queue) = app
        .hub
        .query(|broker, _| (engine_now(), broker.queue()))
        .await?;
    Ok(Json(api::Queue {
        queue: queue.into_iter().map(|w| view::waiter(w, now)).collect(),
    }))
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
) -> Result<Json<api::Events>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_EVENTS_PAGE);
    let events = clock::hold(store::events_after(&app.readers, params.after, limit))
        .await
        .map_err(|e| ApiError::internal(crate::error::chain(&e)))?;
    let next_after = events.last().map_or(params.after, |e| e.event.seq);
    Ok(Json(api::Events {
        events: events.into_iter().map(view::event).collect(),
        next_after,
    }))
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
    if let Some(reason) = &reason {
        // The reason is kept in the journal and told to the holder, like a note.
        app.limits
            .check_note(reason, || "`reason` of the revoke".into())?;
    }
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
    pool.check_limits(&app.limits)?;
    let name = pool.name.clone();
    change(&app, Change::Op(AdminOp::AddPool { pool })).await?;
    let pool = app.hub.query(move |broker, _| broker.pool(&name)).await?;
    Ok((StatusCode::CREATED, Json(pool.map(view::pool))).into_response())
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
    resource.check_limits(&pool, &app.limits)?;
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
    let of = format!(
        "resource `{}` of pool `{}`",
        summoner_protocol::shorten(&name),
        summoner_protocol::shorten(&pool)
    );
    if let Some(labels) = &patch.labels {
        app.limits.check_labels(labels, &of)?;
    }
    if let Some(props) = &patch.props {
        app.limits.check_props(props, &of)?;
    }
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
    let found = app
        .hub
        .query(move |broker, _| {
            broker
                .pool(&pool)
                .and_then(|p| p.resources.into_iter().find(|r| r.name == name))
        })
        .await?;
    match found {
        Some(resource) => Ok((status, Json(view::resource(resource))).into_response()),
        // Removed again between the change and this read: say what was done.
        None => Ok(status.into_response()),
    }
}

/// Anything else.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ApiErrorCode::NotFound, "no such endpoint")
}

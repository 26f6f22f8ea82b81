//! The HTTP JSON API: what the broker holds, who waits, the audit history, metrics, and the
//! admin changes.
//!
//! Handlers check the caller, validate the request and hand it to the broker loop (reads as
//! closures over the engine, changes as [`Change`]s); the journal's history is read straight
//! from SQLite's read-only connections. Answers are the types of [`summoner_protocol::api`],
//! built in `view.rs` (which shortens session ids); errors are [`ApiError`]s, JSON
//! `{code, message}` with a status that matches.
//!
//! Each handler's `#[utoipa::path]` describes it for the OpenAPI document (`openapi.rs`),
//! next to the code it describes; a test checks that the document and the router list the
//! same routes.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use summoner_broker::{AdminError, AdminOp, PoolConfig, QueueMark, ResourceConfig};
use summoner_protocol::LeaseId;
use summoner_protocol::api::{self, ApiErrorCode, Page};
use utoipa::IntoParams;

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

/// A query string, parsed strictly: every handler takes one, so that a misspelt parameter
/// (`?limt=5`) is refused with `bad_request` instead of silently meaning its default.
pub(crate) struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(params)) => Ok(Self(params)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "bad query string: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// The query of an endpoint that takes none but the token.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenOnly {
    /// The token, for clients that cannot set `Authorization: Bearer TOKEN`.
    #[allow(dead_code, reason = "read by the `Reader` and `Admin` extractors")]
    token: Option<String>,
}

/// The query of a paged listing: `GET /v1/leases` and `/v1/queue`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// The `next` of the previous page; the listing's start when absent.
    after: Option<String>,
    /// At most this many items (100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The token, for clients that cannot set `Authorization: Bearer TOKEN`.
    #[allow(dead_code, reason = "read by the `Reader` and `Admin` extractors")]
    token: Option<String>,
}

/// `limit` as given, or the default, if it is within `1..=Page::MAX_LIMIT`.
fn page_limit(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(Page::DEFAULT_LIMIT) {
        limit @ 1..=Page::MAX_LIMIT => Ok(limit as usize),
        other => Err(ApiError::bad_request(format!(
            "query parameter `limit` must be from 1 to {}, not {other}",
            Page::MAX_LIMIT
        ))),
    }
}

fn bad_cursor(after: &str) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter `after` must be the `next` of an earlier page, not `{after}`"
    ))
}

/// Takes items from `items` for one page: up to `limit`, or fewer once they hold about
/// [`Page::MAX_BYTES`] (as `bytes` counts them). Returns them with the cursor of the last
/// one if any item follows it.
fn page<C, T>(
    mut items: impl Iterator<Item = (C, T)>,
    limit: usize,
    bytes: impl Fn(&T) -> usize,
) -> (Vec<T>, Option<C>) {
    let mut out = Vec::new();
    let mut held = 0;
    let mut last = None;
    for (cursor, item) in items.by_ref() {
        held += bytes(&item);
        out.push(item);
        last = Some(cursor);
        if out.len() >= limit || held >= Page::MAX_BYTES {
            break;
        }
    }
    let more = items.next().is_some();
    (out, last.filter(|_| more))
}

/// A JSON request body: refused with `payload_too_large` past axum's body limit (2 MiB), and
/// with `bad_request` when it is not what the endpoint takes (unknown fields included).
/// An empty body parses as `T::default()` where `T` allows that, see [`OptionalBody`].
pub(crate) struct Body<T>(T);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let code = ApiErrorCode::for_status(rejection.status().as_u16())
            .unwrap_or(ApiErrorCode::BadRequest);
        ApiError::new(
            code,
            format!("cannot read the body: {}", rejection.body_text()),
        )
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde_json keeps the last of two equal keys without a word; the protocol refuses them,
    // and so does the API (admin bodies are small, so the second pass costs nothing).
    if let Some(key) = std::str::from_utf8(bytes)
        .ok()
        .and_then(summoner_protocol::repeated_key)
    {
        return Err(ApiError::bad_request(format!(
            "invalid body: key `{}` appears twice in one object; every key may appear only once",
            summoner_protocol::shorten(&key)
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(parse(&body_bytes(req, state).await?)?))
    }
}

/// Like [`Body`], and an empty (or blank) body means `T::default()`.
pub(crate) struct OptionalBody<T>(T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        Ok(Self(parse(&bytes)?))
    }
}

/// The error answers of a read (each `{code, message}`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "only describes answers, for the OpenAPI document")]
pub(crate) enum ReadErrors {
    /// A query parameter that is unknown, repeated, malformed or out of range
    /// (`bad_request`).
    #[response(status = 400)]
    BadRequest(api::ApiError),
    /// No valid token, on a server with tokens (`unauthorized`).
    #[response(status = 401)]
    Unauthorized(api::ApiError),
    /// The server is stopping (`unavailable`).
    #[response(status = 503)]
    Unavailable(api::ApiError),
}

/// The error answers of an admin change (each `{code, message}`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "only describes answers, for the OpenAPI document")]
pub(crate) enum AdminErrors {
    /// A query or body that does not parse, unknown fields included (`bad_request`).
    #[response(status = 400)]
    BadRequest(api::ApiError),
    /// No valid token, on a server with tokens (`unauthorized`).
    #[response(status = 401)]
    Unauthorized(api::ApiError),
    /// The token's role is `client` (`forbidden`).
    #[response(status = 403)]
    Forbidden(api::ApiError),
    /// No such pool, resource or lease (`unknown_pool`, `unknown_resource`,
    /// `unknown_lease`).
    #[response(status = 404)]
    NotFound(api::ApiError),
    /// A pool or resource of that name exists already (`already_exists`).
    #[response(status = 409)]
    Conflict(api::ApiError),
    /// A body over 2 MiB (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(api::ApiError),
    /// The change would leave the inventory invalid, e.g. a capacity of 0 (`invalid`).
    #[response(status = 422)]
    Invalid(api::ApiError),
    /// The server is stopping (`unavailable`).
    #[response(status = 503)]
    Unavailable(api::ApiError),
}

/// `GET /healthz`: 200 while the broker loop answers. Needs no token, for load balancers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    params(TokenOnly),
    responses(
        (status = 200, description = "The broker loop answers.", body = api::Health),
        ReadErrors,
    ),
)]
pub(crate) async fn healthz(
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
) -> Response {
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
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    params(TokenOnly),
    responses(
        (status = 200, description = "Prometheus text (see docs/server.md).", body = String,
         content_type = "text/plain; version=0.0.4; charset=utf-8"),
        ReadErrors,
    ),
)]
pub(crate) async fn metrics(
    _: Reader,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
) -> Result<Response, ApiError> {
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

/// `GET /v1/pools`: every pool, in config order (pools added at run time last).
#[utoipa::path(
    get,
    path = "/v1/pools",
    tag = "reads",
    params(TokenOnly),
    responses((status = 200, description = "Every pool.", body = api::Pools), ReadErrors),
)]
pub(crate) async fn pools(
    _: Reader,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
) -> Result<Json<api::Pools>, ApiError> {
    let pools = app.hub.query(|broker, _| broker.pools()).await?;
    Ok(Json(api::Pools {
        pools: pools.into_iter().map(view::pool).collect(),
    }))
}

/// `GET /v1/pools/{pool}`: one pool, its resources and their holders.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}",
    tag = "reads",
    params(("pool" = String, Path, description = "The pool's name."), TokenOnly),
    responses(
        (status = 200, description = "The pool.", body = api::Pool),
        (status = 404, description = "No such pool (`unknown_pool`).", body = api::ApiError),
        ReadErrors,
    ),
)]
pub(crate) async fn pool(
    _: Reader,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<api::Pool>, ApiError> {
    let wanted = name.clone();
    match app.hub.query(move |broker, _| broker.pool(&wanted)).await? {
        Some(pool) => Ok(Json(view::pool(pool))),
        None => Err(AdminError::UnknownPool(name).into()),
    }
}

/// `GET /v1/leases?after=C&limit=M`: a page of the leases, oldest first.
///
/// The page is built on the loop from the leases after the cursor only, so a long list costs
/// the loop what one page shows.
#[utoipa::path(
    get,
    path = "/v1/leases",
    tag = "reads",
    params(PageParams),
    responses((status = 200, description = "A page of the leases.", body = api::Leases), ReadErrors),
)]
pub(crate) async fn leases(
    _: Reader,
    Params(params): Params<PageParams>,
    State(app): State<AppState>,
) -> Result<Json<api::Leases>, ApiError> {
    let limit = page_limit(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|after| after.parse::<u64>().map_err(|_| bad_cursor(after)))
        .transpose()?;
    let (now, total, (leases, next)) = app
        .hub
        .query(move |broker, _| {
            let leases = broker.leases_after(after);
            let page = page(leases, limit, view::lease_bytes);
            (engine_now(), broker.stats().leases, page)
        })
        .await?;
    Ok(Json(api::Leases {
        leases: leases.into_iter().map(|l| view::lease(l, now)).collect(),
        total: total as u64,
        next: next.map(|seq| seq.to_string()),
    }))
}

/// `GET /v1/queue?after=C&limit=M`: a page of the waiting requests, in service order.
#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "reads",
    params(PageParams),
    responses((status = 200, description = "A page of the queue.", body = api::Queue), ReadErrors),
)]
pub(crate) async fn queue(
    _: Reader,
    Params(params): Params<PageParams>,
    State(app): State<AppState>,
) -> Result<Json<api::Queue>, ApiError> {
    let limit = page_limit(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|after| queue_cursor(after).ok_or_else(|| bad_cursor(after)))
        .transpose()?;
    let (now, total, (queue, next)) = app
        .hub
        .query(move |broker, _| {
            let waiters = broker.queue_after(after);
            let page = page(waiters, limit, view::waiter_bytes);
            (engine_now(), broker.stats().waiting, page)
        })
        .await?;
    Ok(Json(api::Queue {
        queue: queue.into_iter().map(|w| view::waiter(w, now)).collect(),
        total: total as u64,
        next: next.map(|mark| format!("{}.{}", mark.priority, mark.arrival)),
    }))
}

/// A queue cursor, `PRIORITY.ARRIVAL` (as [`queue`] writes them).
fn queue_cursor(text: &str) -> Option<QueueMark> {
    let (priority, arrival) = text.split_once('.')?;
    Some(QueueMark {
        priority: priority.parse().ok()?,
        arrival: arrival.parse().ok()?,
    })
}

/// The engine's clock (tokio's, so that paused test time applies).
fn engine_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsParams {
    /// Only events with a larger sequence number (0 when absent): the `next_after` of the
    /// previous page.
    #[serde(default)]
    after: u64,
    /// At most this many events (100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The token, for clients that cannot set `Authorization: Bearer TOKEN`.
    #[allow(dead_code, reason = "read by the `Reader` and `Admin` extractors")]
    token: Option<String>,
}

/// `GET /v1/events?after=N&limit=M`: a page of the audit history, oldest first.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "reads",
    params(EventsParams),
    responses((status = 200, description = "A page of the history.", body = api::Events), ReadErrors),
)]
pub(crate) async fn events(
    _: Reader,
    Params(params): Params<EventsParams>,
    State(app): State<AppState>,
) -> Result<Json<api::Events>, ApiError> {
    let limit = page_limit(params.limit)?;
    let limit = u32::try_from(limit).expect("a page's limit fits a u32");
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

/// `POST /v1/leases/{lease}/revoke` with an optional `{"reason": "..."}`: force release.
#[utoipa::path(
    post,
    path = "/v1/leases/{lease}/revoke",
    tag = "admin",
    params(("lease" = String, Path, description = "The lease's id."), TokenOnly),
    request_body(content = api::Revoke, description = "May also be empty."),
    responses((status = 204, description = "Revoked; its holder was told."), AdminErrors),
)]
pub(crate) async fn revoke(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path(lease): Path<String>,
    OptionalBody(api::Revoke { reason }): OptionalBody<api::Revoke>,
) -> Result<Response, ApiError> {
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
#[utoipa::path(
    post,
    path = "/v1/pools",
    tag = "admin",
    params(TokenOnly),
    request_body = api::PoolSpec,
    responses((status = 201, description = "Added.", body = api::Pool), AdminErrors),
)]
pub(crate) async fn add_pool(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Body(pool): Body<PoolConfig>,
) -> Result<Response, ApiError> {
    pool.check_limits(&app.limits)?;
    let name = pool.name.clone();
    change(&app, Change::Op(AdminOp::AddPool { pool })).await?;
    let pool = app.hub.query(move |broker, _| broker.pool(&name)).await?;
    Ok((StatusCode::CREATED, Json(pool.map(view::pool))).into_response())
}

/// `DELETE /v1/pools/{pool}`: revokes its leases, refuses its waiters, removes it.
#[utoipa::path(
    delete,
    path = "/v1/pools/{pool}",
    tag = "admin",
    params(("pool" = String, Path, description = "The pool's name."), TokenOnly),
    responses((status = 204, description = "Removed."), AdminErrors),
)]
pub(crate) async fn remove_pool(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path(pool): Path<String>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::RemovePool { pool })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources` with a resource: add it.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/resources",
    tag = "admin",
    params(("pool" = String, Path, description = "The pool's name."), TokenOnly),
    request_body = api::ResourceSpec,
    responses((status = 201, description = "Added.", body = api::Resource), AdminErrors),
)]
pub(crate) async fn add_resource(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path(pool): Path<String>,
    Body(resource): Body<ResourceConfig>,
) -> Result<Response, ApiError> {
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
#[utoipa::path(
    patch,
    path = "/v1/pools/{pool}/resources/{name}",
    tag = "admin",
    params(
        ("pool" = String, Path, description = "The pool's name."),
        ("name" = String, Path, description = "The resource's name."),
        TokenOnly,
    ),
    request_body = api::ResourcePatch,
    responses((status = 200, description = "Changed.", body = api::Resource), AdminErrors),
)]
pub(crate) async fn patch_resource(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path((pool, name)): Path<(String, String)>,
    Body(patch): Body<api::ResourcePatch>,
) -> Result<Response, ApiError> {
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
    let api::ResourcePatch {
        labels,
        props,
        capacity,
        enabled,
    } = patch;
    change(
        &app,
        Change::Patch {
            pool: pool.clone(),
            name: name.clone(),
            patch: ResourcePatch {
                labels,
                props,
                capacity,
                enabled,
            },
        },
    )
    .await?;
    resource_view(&app, pool, name, StatusCode::OK).await
}

/// `DELETE /v1/pools/{pool}/resources/{name}`: revokes its leases, removes it.
#[utoipa::path(
    delete,
    path = "/v1/pools/{pool}/resources/{name}",
    tag = "admin",
    params(
        ("pool" = String, Path, description = "The pool's name."),
        ("name" = String, Path, description = "The resource's name."),
        TokenOnly,
    ),
    responses((status = 204, description = "Removed."), AdminErrors),
)]
pub(crate) async fn remove_resource(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path((pool, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::RemoveResource { pool, resource })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources/{name}/disable`: not granted again until enabled; its
/// holders keep it.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/resources/{name}/disable",
    tag = "admin",
    params(
        ("pool" = String, Path, description = "The pool's name."),
        ("name" = String, Path, description = "The resource's name."),
        TokenOnly,
    ),
    responses((status = 204, description = "Disabled."), AdminErrors),
)]
pub(crate) async fn disable(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
    State(app): State<AppState>,
    Path((pool, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(&app, Change::Op(AdminOp::Disable { pool, resource })).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/pools/{pool}/resources/{name}/enable`.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/resources/{name}/enable",
    tag = "admin",
    params(
        ("pool" = String, Path, description = "The pool's name."),
        ("name" = String, Path, description = "The resource's name."),
        TokenOnly,
    ),
    responses((status = 204, description = "Enabled."), AdminErrors),
)]
pub(crate) async fn enable(
    _: Admin,
    Params(TokenOnly { .. }): Params<TokenOnly>,
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

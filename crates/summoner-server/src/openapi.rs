//! The OpenAPI description of the HTTP API, served at `GET /v1/openapi.json`.
//!
//! It is generated, not written: each handler in `api.rs` carries a `#[utoipa::path]` beside
//! its code, and the bodies are the types of [`summoner_protocol::api`], whose `ToSchema`
//! comes from their serde attributes (the crate's `openapi` feature). A test in `server.rs`
//! checks that this document and the router list the same routes, with the same methods, and
//! `tests/api.rs` that `docs/server.md` lists each of them.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::api::{self, Params, ReadErrors, TokenOnly};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "summoner",
        description = "The HTTP API of summoner's server: the broker's pools, leases, queue \
                       and history, and the admin changes. Every error is `{code, message}`. \
                       See docs/server.md; the lease protocol itself is docs/protocol.md.",
    ),
    paths(
        lease,
        openapi_json,
        api::healthz,
        api::metrics,
        api::pools,
        api::pool,
        api::leases,
        api::queue,
        api::events,
        api::revoke,
        api::add_pool,
        api::remove_pool,
        api::add_resource,
        api::patch_resource,
        api::remove_resource,
        api::disable,
        api::enable,
    ),
    tags(
        (name = "broker", description = "The lease protocol, over a WebSocket."),
        (name = "server", description = "Health, metrics and this document; no token needed \
                                         except for metrics."),
        (name = "reads", description = "What the broker holds; any token."),
        (name = "admin", description = "Changes; an `admin` token."),
    ),
)]
struct ApiDoc;

/// The document.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served, made once.
static JSON: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&document()).expect("the OpenAPI document always serializes")
});

/// `GET /v1/openapi.json`: this document. Needs no token: it describes the API, not what the
/// broker holds.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "server",
    params(TokenOnly),
    responses(
        (status = 200, description = "The OpenAPI description of this API.", body = Object),
        ReadErrors,
    ),
)]
pub(crate) async fn openapi_json(Params(TokenOnly { .. }): Params<TokenOnly>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str()).into_response()
}

/// The query of `GET /v1/lease` (parsed in `ws.rs`; described here).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the query, for the OpenAPI document"
)]
struct LeaseParams {
    /// The token, for clients that cannot set `Authorization: Bearer TOKEN` on a handshake.
    token: Option<String>,
    /// `true` (or `1`) asks for a session that survives a dropped connection for the resume
    /// grace; `false` (or `0`, or absent) for one that ends with its connection.
    resumable: Option<bool>,
}

/// `GET /v1/lease`: the broker's protocol, one JSON message per WebSocket text frame
/// (docs/protocol.md). The token and the query are checked before the upgrade.
#[utoipa::path(
    get,
    path = "/v1/lease",
    tag = "broker",
    params(LeaseParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        ReadErrors,
    ),
)]
#[allow(dead_code, reason = "describes `ws::lease`, which `server.rs` routes")]
fn lease() {}

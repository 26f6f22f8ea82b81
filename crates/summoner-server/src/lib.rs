//! summoner's server: the broker over WebSocket and HTTP, with its journal in SQLite.
//!
//! This crate is glue around [`summoner_broker::Broker`], the pure lease engine:
//!
//! - `server.rs`, [`serve`]: composes the rest, routes, and shuts down;
//! - `connections.rs`, the accept loop: connection slots, request deadlines, and which
//!   connection gives way at the limit;
//! - `guard.rs`, the rules on `Host`, `Origin` and body types that keep browsers from acting
//!   for an attacker, over `origin.rs`, which parses and compares those headers;
//! - `state.rs`, what every handler and connection shares;
//! - `hub.rs`, the broker loop: one task owns the engine and takes inputs in batches;
//! - `batch.rs`, what the loop hands the journal writer, and `outbox.rs`, how both reach a
//!   connection (and why the server may end one);
//! - `journal.rs`, the journal writer beside the loop: stores each batch's events in one
//!   transaction and only then sends what they announce;
//! - `ws.rs`, `GET /v1/lease`: one task per WebSocket, with ping/pong liveness; the only file
//!   that knows WebSocket close codes;
//! - `api.rs`, the HTTP JSON API's handlers, admin endpoints and Prometheus metrics, answering
//!   with the bodies of [`summoner_protocol::api`] that `view.rs` builds;
//! - `openapi.rs`, the OpenAPI description of the HTTP API (`GET /v1/openapi.json`),
//!   generated from the handlers and the bodies' types;
//! - `error.rs`, [`ServerError`], and the HTTP API's error answers;
//! - [`store`], the journal and its migrations, as plain async functions over a connection;
//! - `mark.rs`, the journal's identity and high-water mark (`summoner.state`), which tells a
//!   starting server that its journal was damaged or went back in time;
//! - `restore.rs` and `inventory.rs`, rebuilding the engine from the journal at start;
//! - [`config`], `summoner.toml`.
//!
//! `docs/server.md` is the design note (the loop, batching, durability, sessions, restart);
//! `docs/config.md` documents the config file.
//!
//! ```no_run
//! # async fn run() -> Result<(), summoner_server::ServerError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! let config = summoner_server::ServerConfig::default();
//! summoner_server::serve(listener, config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

mod api;
mod auth;
mod batch;
mod clock;
pub mod config;
mod connections;
mod error;
mod guard;
mod hub;
mod inventory;
mod journal;
mod mark;
mod metrics;
mod openapi;
mod origin;
mod outbox;
mod restore;
mod server;
mod session_id;
mod state;
pub mod store;
mod view;
mod ws;

pub use config::{ConfigError, HttpConfig, Role, ServerConfig, SyncMode, TokenConfig};
pub use error::ServerError;
pub use mark::{JournalDamage, MARK_FILE};
pub use server::{Server, serve};
pub use store::StoreError;
pub use ws::{CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_RESUMED, CLOSE_TOO_BIG};

//! summoner's server: the broker over WebSocket and HTTP, with its journal in SQLite.
//!
//! This crate is glue around [`summoner_broker::Broker`], the pure lease engine:
//!
//! - `hub.rs`, the broker loop: one task owns the engine and takes inputs in batches;
//! - `journal.rs`, the journal writer beside it: stores each batch's events in one
//!   transaction and only then sends what they announce;
//! - `ws.rs`, `GET /v1/lease`: one task per WebSocket, with ping/pong liveness;
//! - `api.rs`, the HTTP JSON API, admin endpoints and Prometheus metrics;
//! - [`store`], the journal and its migrations, as plain async functions over a connection;
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
mod clock;
pub mod config;
mod error;
mod hub;
mod inventory;
mod journal;
mod metrics;
mod restore;
mod server;
mod session_id;
pub mod store;
mod ws;

pub use config::{ConfigError, Role, ServerConfig, SyncMode, TokenConfig};
pub use error::ServerError;
pub use server::serve;
pub use store::StoreError;
pub use ws::{CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_RESUMED, CLOSE_TOO_BIG};

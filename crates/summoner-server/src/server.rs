//! The entry point: [`serve`] opens the journal, restores the engine, starts the broker loop
//! and serves HTTP and WebSocket until the shutdown future completes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api;
use crate::auth::Auth;
use crate::clock;
use crate::config::ServerConfig;
use crate::connections::{self, Limits};
use crate::error::ServerError;
use crate::guard::{self, Guard};
use crate::hub::{Hub, Journaling};
use crate::metrics::ConnectionStats;
use crate::restore::restore;
use crate::state::AppState;
use crate::store;
use crate::ws;

/// How long a stopping server waits for its WebSocket connections to finish their close
/// handshakes before it returns anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves the broker on `listener` until `shutdown` completes (or the journal cannot be
/// written, see [`ServerError::Journal`]).
///
/// Before accepting anything it creates the data directory, applies pending migrations
/// (under a lock, see [`store::migrate`]) and restores the engine from the journal, so leases
/// that were held when the server last stopped are back, orphaned for `resume_grace`, before
/// anyone can ask for them.
///
/// On shutdown it stops accepting, finishes and commits the batch in progress, and closes
/// every WebSocket with 1001 ("going away"). Leases are **kept**: they are in the journal, and
/// after a restart their holders have the resume grace to reconnect and `resume`, as after a
/// crash. (Releasing them would hand a test's port to someone else just because the broker
/// was upgraded.)
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    config.check_for(addr)?;
    let auth = Auth::new(config.resolve_tokens()?);
    let store_error = |source| ServerError::Store {
        dir: config.data_dir.clone(),
        source,
    };
    let mut db = clock::hold(store::open(&config.data_dir, config.sync))
        .await
        .map_err(store_error)?;
    clock::hold(store::migrate(&mut db))
        .await
        .map_err(store_error)?;
    let readers = clock::hold(store::open_readers(&config.data_dir))
        .await
        .map_err(store_error)?;
    let (broker, uncheckpointed) = restore(&mut db, &config).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let shutting_down = Arc::new(AtomicBool::new(false));
    let (hub, handle) = Hub::new(
        broker,
        stop_rx.clone(),
        shutting_down.clone(),
        config.dropped_connection,
    );
    let hub_task = tokio::spawn(hub.run(
        db,
        Journaling {
            checkpoint_events: config.checkpoint_events,
            history_retention: config.history_retention,
            uncheckpointed,
        },
    ));
    let connection_stats = Arc::new(ConnectionStats::default());
    let (state, mut all_gone) = AppState::new(
        handle,
        readers.clone(),
        auth,
        config.ping_interval,
        config.limits,
        shutting_down,
        connection_stats.clone(),
    );
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "serving");
    let limits = Limits::new(
        config.http.max_connections,
        config.http.request_read_timeout,
    );
    let guard = Guard::new(&config.http.allowed_hosts, &config.http.allowed_origins);

    let trigger = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
    };
    let router = router(state)
        // Outermost first: a request the guard refuses costs no deadline and no slot change.
        .layer(from_fn_with_state(limits, connections::track))
        .layer(from_fn_with_state(Arc::new(guard), guard::check));
    let http = connections::serve(listener, router, limits, connection_stats, stop_rx.clone());
    let hub_done = async {
        let result = hub_task.await;
        // However the loop ended, the HTTP side stops with it.
        let _ = stop_tx.send(true);
        result
    };
    let (http_result, hub_result) = tokio::join!(http, hub_done);
    trigger.abort();
    // Connections close once the loop has dropped their outboxes; give them a moment to
    // finish the close handshake with their peers.
    let _ = tokio::time::timeout(CLOSE_GRACE, all_gone.recv()).await;
    clock::hold(readers.close()).await;
    let hub_result = match hub_result {
        Ok(result) => result,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    };
    hub_result.map_err(ServerError::Journal)?;
    http_result?;
    tracing::info!("stopped");
    Ok(())
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/lease", get(ws::lease))
        .route("/v1/pools", get(api::pools).post(api::add_pool))
        .route("/v1/pools/{pool}", get(api::pool).delete(api::remove_pool))
        .route("/v1/pools/{pool}/resources", post(api::add_resource))
        .route(
            "/v1/pools/{pool}/resources/{name}",
            axum::routing::patch(api::patch_resource).delete(api::remove_resource),
        )
        .route(
            "/v1/pools/{pool}/resources/{name}/disable",
            post(api::disable),
        )
        .route(
            "/v1/pools/{pool}/resources/{name}/enable",
            post(api::enable),
        )
        .route("/v1/leases", get(api::leases))
        .route("/v1/leases/{lease}/revoke", post(api::revoke))
        .route("/v1/queue", get(api::queue))
        .route("/v1/events", get(api::events))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .with_state(state)
}

//! The entry point: [`serve`] opens the journal, restores the engine, starts the broker loop
//! and serves HTTP and WebSocket until the shutdown future completes.

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api;
use crate::auth::Auth;
use crate::clock;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::hub::{Hub, Journaling};
use crate::mark;
use crate::restore::restore;
use crate::state::AppState;
use crate::store;
use crate::ws;

/// How long a stopping server waits for its WebSocket connections to finish their close
/// handshakes before it returns anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves the broker on `listener` until `shutdown` completes (or the journal cannot be
/// written, see [`ServerError::Journal`]): [`Server::start`], then [`Server::run`].
///
/// Before accepting anything it creates the data directory, opens the journal, checks that it
/// is sound and has not gone back in time (see [`ServerError::JournalDamaged`]), applies
/// pending migrations (under a lock, see [`store::migrate`]) and restores the engine from the
/// journal, so leases that were held when the server last stopped are back, orphaned for
/// `resume_grace`, before anyone can ask for them.
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
    Server::start(listener, config).await?.run(shutdown).await
}

/// A server whose journal is open, checked and restored, and whose broker loop runs: what
/// [`serve`] does before it serves. Split in two so that `summoner serve` says "serving" only
/// once nothing but serving is left to do.
pub struct Server {
    addr: SocketAddr,
    listener: TcpListener,
    state: AppState,
    all_gone: mpsc::Receiver<()>,
    readers: sqlx::SqlitePool,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    hub_task: JoinHandle<Result<(), store::StoreError>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the config, opens and checks the journal, restores the engine and starts the
    /// broker loop. Every reason not to serve is found here; [`Server::run`] only serves.
    /// Dropped without running, it stops the loop.
    pub async fn start(listener: TcpListener, config: ServerConfig) -> Result<Self, ServerError> {
        let addr = listener.local_addr()?;
        config.check_for(addr)?;
        let auth = Auth::new(config.resolve_tokens()?);
        let store_error = |source| ServerError::Store {
            dir: config.data_dir.clone(),
            source,
        };
        let found = mark::Found::look(&config.data_dir);
        // Opening would create an empty database in its place.
        if let Some(damage) = found.missing_database(&config.data_dir)
            && !config.accept_journal_loss
        {
            return Err(ServerError::JournalDamaged(damage));
        }
        let check_error = |err| match err {
            mark::CheckError::Damaged(damage) => ServerError::JournalDamaged(damage),
            mark::CheckError::Store(source) => store_error(source),
        };
        let mut db = clock::hold(store::open(&config.data_dir, config.sync))
            .await
            .map_err(store_error)?;
        mark::quick_check(&mut db, &config.data_dir)
            .await
            .map_err(check_error)?;
        clock::hold(store::migrate(&mut db))
            .await
            .map_err(store_error)?;
        let (journal, floor) = mark::check(
            &mut db,
            &config.data_dir,
            &found,
            config.accept_journal_loss,
        )
        .await
        .map_err(check_error)?;
        let committed = clock::hold(store::highest_seq(&mut db))
            .await
            .map_err(store_error)?;
        let mut keeper = mark::Keeper::start(&config.data_dir, journal, committed, floor)
            .await
            .map_err(store_error)?;
        let readers = clock::hold(store::open_readers(&config.data_dir))
            .await
            .map_err(store_error)?;
        let (broker, uncheckpointed) = restore(&mut db, &config, floor, &mut keeper).await?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let shutting_down = Arc::new(AtomicBool::new(false));
        let (hub, handle) = Hub::new(broker, stop_rx.clone(), shutting_down.clone());
        let hub_task = tokio::spawn(hub.run(
            db,
            keeper,
            Journaling {
                checkpoint_events: config.checkpoint_events,
                history_retention: config.history_retention,
                uncheckpointed,
            },
        ));
        let (state, all_gone) = AppState::new(
            handle,
            readers.clone(),
            auth,
            config.ping_interval,
            shutting_down,
        );
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "serving");
        Ok(Self {
            addr,
            listener,
            state,
            all_gone,
            readers,
            stop_tx,
            stop_rx,
            hub_task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes (or the journal cannot be written), then stops as
    /// [`serve`] says.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Self {
            addr: _,
            listener,
            state,
            mut all_gone,
            readers,
            stop_tx,
            stop_rx,
            hub_task,
        } = self;
        let trigger = {
            let stop_tx = stop_tx.clone();
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
        };
        let mut stopped = stop_rx.clone();
        // Nagle off. Every message is small and someone waits for it, and Nagle holds a small
        // segment back while an earlier one is unacknowledged: a waiter that was sent `queued`
        // and has sent nothing since (so its kernel delays the ACK, by up to 40 ms) got its
        // `granted` 40 ms late. Measured with `summoner bench broker --handover`: 42 ms before,
        // well under a millisecond after.
        let listener = listener.tap_io(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY on a connection: {err}");
            }
        });
        let http = axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .into_future();
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

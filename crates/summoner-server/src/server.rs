//! The entry point: [`serve`] opens the journal, restores the engine, starts the broker loop
//! and serves HTTP and WebSocket until the shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodFilter, on};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api;
use crate::auth::Auth;
use crate::clock;
use crate::config::ServerConfig;
use crate::connections::{self, Limits};
use crate::error::{ServerError, json_errors};
use crate::guard::{self, Guard};
use crate::hub::{Hub, Journaling};
use crate::mark;
use crate::metrics::ConnectionStats;
use crate::openapi;
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
    /// The HTTP edge's connection bounds and deadlines.
    limits: Limits,
    /// The HTTP edge's `Host` and `Origin` rules.
    guard: Guard,
    connection_stats: Arc<ConnectionStats>,
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
        let (hub, handle) = Hub::new(
            broker,
            stop_rx.clone(),
            shutting_down.clone(),
            config.dropped_connection,
        );
        let hub_task = tokio::spawn(hub.run(
            db,
            keeper,
            Journaling {
                checkpoint_events: config.checkpoint_events,
                history_retention: config.history_retention,
                uncheckpointed,
            },
        ));
        let connection_stats = Arc::new(ConnectionStats::default());
        let (state, all_gone) = AppState::new(
            handle,
            readers.clone(),
            auth,
            config.ping_interval,
            config.limits,
            shutting_down,
            connection_stats.clone(),
        );
        let limits = Limits::new(
            config.http.max_connections,
            config.http.request_read_timeout,
        );
        let guard = Guard::new(&config.http.allowed_hosts, &config.http.allowed_origins);
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
            limits,
            guard,
            connection_stats,
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
            limits,
            guard,
            connection_stats,
        } = self;
        let trigger = {
            let stop_tx = stop_tx.clone();
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
        };
        let router = router(state)
            // Outermost first: a request the guard refuses costs no deadline and no slot
            // change.
            .layer(from_fn_with_state(limits, connections::track))
            .layer(from_fn_with_state(Arc::new(guard), guard::check));
        let http = connections::serve(listener, router, limits, connection_stats, stop_rx);
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
    routes().router.with_state(state)
}

/// The router and the routes it serves, built together so that a test can compare them with
/// the OpenAPI document.
struct Routes {
    router: Router<AppState>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    /// Serves `method` on `path` with `handler`; a path's methods accumulate.
    fn at<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        self.served.push((method, path));
        self
    }
}

/// Every route of the server. Every error answer is `{code, message}` (`json_errors` covers
/// those that axum writes itself).
fn routes() -> Routes {
    let mut routes = Routes::new()
        .at(Method::GET, "/v1/lease", ws::lease)
        .at(Method::GET, "/v1/openapi.json", openapi::openapi_json)
        .at(Method::GET, "/healthz", api::healthz)
        .at(Method::GET, "/metrics", api::metrics)
        .at(Method::GET, "/v1/pools", api::pools)
        .at(Method::POST, "/v1/pools", api::add_pool)
        .at(Method::GET, "/v1/pools/{pool}", api::pool)
        .at(Method::DELETE, "/v1/pools/{pool}", api::remove_pool)
        .at(
            Method::POST,
            "/v1/pools/{pool}/resources",
            api::add_resource,
        )
        .at(
            Method::PATCH,
            "/v1/pools/{pool}/resources/{name}",
            api::patch_resource,
        )
        .at(
            Method::DELETE,
            "/v1/pools/{pool}/resources/{name}",
            api::remove_resource,
        )
        .at(
            Method::POST,
            "/v1/pools/{pool}/resources/{name}/disable",
            api::disable,
        )
        .at(
            Method::POST,
            "/v1/pools/{pool}/resources/{name}/enable",
            api::enable,
        )
        .at(Method::GET, "/v1/leases", api::leases)
        .at(Method::POST, "/v1/leases/{lease}/revoke", api::revoke)
        .at(Method::GET, "/v1/queue", api::queue)
        .at(Method::GET, "/v1/events", api::events);
    routes.router = routes
        .router
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(json_errors));
    routes
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> = routes()
            .served
            .into_iter()
            .map(|(method, path)| (method.as_str().to_lowercase(), path.to_owned()))
            .collect();
        let document = serde_json::to_value(openapi::document()).unwrap();
        let mut described = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                if item.get(method).is_some() {
                    described.insert((method.to_owned(), path.clone()));
                }
            }
        }
        assert_eq!(served, described);
    }
}

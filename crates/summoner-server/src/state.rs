//! What every HTTP handler and WebSocket connection shares: the way to the broker loop, the
//! journal's readers, the tokens, and the liveness settings.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use sqlx::SqlitePool;
use summoner_protocol::Limits;
use tokio::sync::mpsc;

use crate::auth::Auth;
use crate::hub::HubHandle;
use crate::metrics::ConnectionStats;

/// The shared state. Cloning is one reference count.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub hub: HubHandle,
    pub readers: SqlitePool,
    pub auth: Auth,
    pub ping_interval: Duration,
    /// The bounds every frame and admin change is checked against.
    pub limits: Limits,
    pub next_conn: AtomicU64,
    /// Set by the loop when it lets go of every connection at shutdown.
    pub shutting_down: Arc<AtomicBool>,
    /// What the accept loop counts, for `/metrics`.
    pub connections: Arc<ConnectionStats>,
    /// Dropped with the last clone of the state, that is when the last connection has ended:
    /// whoever holds the receiver learns so (the server waits for it before it returns).
    _alive: mpsc::Sender<()>,
}

impl AppState {
    /// The state, and a receiver that yields `None` once every clone of it is gone.
    pub fn new(
        hub: HubHandle,
        readers: SqlitePool,
        auth: Auth,
        ping_interval: Duration,
        limits: Limits,
        shutting_down: Arc<AtomicBool>,
        connections: Arc<ConnectionStats>,
    ) -> (Self, mpsc::Receiver<()>) {
        let (alive, all_gone) = mpsc::channel(1);
        let state = Self(Arc::new(Shared {
            hub,
            readers,
            auth,
            ping_interval,
            limits,
            next_conn: AtomicU64::new(0),
            shutting_down,
            connections,
            _alive: alive,
        }));
        (state, all_gone)
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

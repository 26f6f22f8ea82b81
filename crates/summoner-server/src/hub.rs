//! The broker loop: one task owns the [`Broker`] and everything that changes it goes through
//! its channel.
//!
//! Connections and HTTP handlers send [`Command`]s. The loop takes every command that is
//! ready (up to [`BATCH_CAP`]), feeds each to the engine with one reused [`Outputs`] buffer,
//! and hands the batch's events, together with the messages they announce, to the journal
//! writer (`journal.rs`), which stores the events in one statement (one transaction, one
//! fsync) and only then sends the messages and answers the admin calls. A client therefore
//! never hears of a grant that a crash could forget. While the writer commits batch n, the
//! loop already works on batch n + 1, and the inputs that arrive during a commit all join the
//! next batch: the busier the server, the bigger the batches and the rarer the fsyncs.
//!
//! Reads for the HTTP API are closures run on the loop against the engine, so they need no
//! lock: message passing, not shared memory.
//!
//! Connections are known by a [`ConnId`]; the engine knows sessions. The two differ after a
//! `resume` (a new connection adopts an old session), so the loop keeps both maps and turns
//! the engine's session-addressed messages into connection-addressed ones at the moment each
//! input is handled, in the order the engine asks for: close, adopt, send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use sqlx::SqliteConnection;
use summoner_broker::{AdminError, AdminOp, Broker, Disconnect, Input, Outputs, ResourceConfig};
use summoner_protocol::{ClientMessage, Labels, Props, SessionId, ShortSessionId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::batch::{AdminReply, Batch, Delivery};
use crate::config::DroppedConnection;
use crate::error::Gone;
use crate::journal::Writer;
use crate::mark::Keeper;
use crate::metrics::Metrics;
use crate::outbox::{ConnId, Ending, OUTBOX_CAP, Out, Outbox};
use crate::store::StoreError;

/// The most inputs handled in one batch (one journal commit). Large enough that a busy
/// server commits rarely, small enough that one batch's latency stays in the milliseconds.
pub(crate) const BATCH_CAP: usize = 4096;

/// Room in the command channel. Senders wait when it is full, which slows down clients that
/// talk faster than the engine can answer instead of queueing without bound.
pub(crate) const COMMAND_CAP: usize = 16 * 1024;

/// A read of the engine's state, run on the loop after a commit.
pub(crate) type Query = Box<dyn FnOnce(&Broker, &Metrics) + Send>;

/// What the loop is told.
pub(crate) enum Command {
    /// A WebSocket connection opened, with the session id it will be welcomed with.
    Connect {
        conn: ConnId,
        session: SessionId,
        /// Whether the client asked for a session that survives a dropped connection.
        resumable: bool,
        outbox: Outbox,
    },
    /// A parsed message from a connection.
    Message { conn: ConnId, msg: ClientMessage },
    /// A connection ended on the peer's side (or went silent).
    Disconnected { conn: ConnId, hangup: Hangup },
    /// An administrative change from the HTTP API.
    Admin { change: Change, reply: AdminReply },
    /// A read for the HTTP API.
    Query(Query),
}

/// How a peer ended its connection, as its connection's task saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hangup {
    /// A close frame: a deliberate goodbye.
    Clean,
    /// EOF or a reset without a close frame: the peer's socket was closed, which is what the
    /// kernel does when the peer's process dies. (Behind a proxy, the proxy's socket.)
    SocketClosed,
    /// Anything else: silence for two ping intervals, a frame over the size limit, a broken
    /// frame, a failed write. The peer may still be alive.
    Lost,
}

/// An administrative change.
#[derive(Debug)]
pub(crate) enum Change {
    /// One of the engine's own operations.
    Op(AdminOp),
    /// A partial update of a resource, merged with its current state on the loop so that two
    /// concurrent patches cannot undo each other.
    Patch {
        pool: String,
        name: String,
        patch: ResourcePatch,
    },
}

/// The fields `PATCH /v1/pools/{pool}/resources/{name}` may change; absent ones stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourcePatch {
    pub labels: Option<Labels>,
    pub props: Option<Props>,
    pub capacity: Option<u32>,
    pub enabled: Option<bool>,
}

/// How the rest of the server talks to the loop.
#[derive(Debug, Clone)]
pub(crate) struct HubHandle {
    tx: mpsc::Sender<Command>,
}

impl HubHandle {
    pub async fn send(&self, command: Command) -> Result<(), Gone> {
        self.tx.send(command).await.map_err(|_| Gone)
    }

    /// Runs `f` on the loop, against committed state, and returns its result.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Broker, &Metrics) -> T + Send + 'static,
    ) -> Result<T, Gone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Query(Box::new(move |broker, metrics| {
            let _ = reply.send(f(broker, metrics));
        })))
        .await?;
        answer.await.map_err(|_| Gone)
    }

    /// Applies `change`; the answer comes once its events are durable.
    pub async fn admin(&self, change: Change) -> Result<Result<(), AdminError>, Gone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Admin { change, reply }).await?;
        answer.await.map_err(|_| Gone)
    }
}

struct Conn {
    session: SessionId,
    outbox: Outbox,
}

/// How the journal is kept beyond the events themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Journaling {
    /// Events between two checkpoints.
    pub checkpoint_events: u64,
    /// How long the history keeps an event.
    pub history_retention: std::time::Duration,
    /// Events in the journal after its newest checkpoint when the loop starts.
    pub uncheckpointed: u64,
}

/// The loop's state.
pub(crate) struct Hub {
    broker: Broker,
    rx: mpsc::Receiver<Command>,
    stop: watch::Receiver<bool>,
    /// Set before the loop drops the outboxes at shutdown, so that connections can tell their
    /// peers why they are being closed.
    shutting_down: Arc<AtomicBool>,
    conns: HashMap<ConnId, Conn>,
    sessions: HashMap<SessionId, ConnId>,
    out: Outputs,
    /// What the batch in progress will hand to the journal writer.
    batch: Batch,
    /// Events since the last checkpoint.
    since_checkpoint: u64,
    metrics: Arc<Mutex<Metrics>>,
    /// What a closed socket means for a resumable session's leases.
    dropped_connection: DroppedConnection,
}

impl Hub {
    /// A loop around `broker`, stopping when `stop` becomes true. `dropped_connection` says
    /// what a peer's closed socket means for its leases (see [`Hub::disconnect`]).
    pub fn new(
        broker: Broker,
        stop: watch::Receiver<bool>,
        shutting_down: Arc<AtomicBool>,
        dropped_connection: DroppedConnection,
    ) -> (Self, HubHandle) {
        let (tx, rx) = mpsc::channel(COMMAND_CAP);
        let hub = Self {
            broker,
            rx,
            stop,
            shutting_down,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            out: Outputs::default(),
            batch: Batch::default(),
            since_checkpoint: 0,
            metrics: Arc::new(Mutex::new(Metrics::default())),
            dropped_connection,
        };
        (hub, HubHandle { tx })
    }

    /// Runs until `stop`, or until the journal cannot be written, with `db` as the journal.
    ///
    /// A failed journal write stops the server rather than carry on: the engine has already
    /// moved on to a state the journal does not have, and the only truth a restart can
    /// rebuild is the journal's. The sessions that were about to hear of the lost changes get
    /// `error {code: internal}` instead, every connection is ended with
    /// [`Ending::JournalFailed`], and the error is returned (and so by `serve`), so a
    /// supervisor can restart the server from the journal (held leases then wait for their holders to resume, as after any restart).
    pub async fn run(
        mut self,
        db: SqliteConnection,
        mark: Keeper,
        journaling: Journaling,
    ) -> Result<(), StoreError> {
        let (to_writer, batches) = mpsc::channel::<Batch>(1);
        let (slow_tx, mut slow) = mpsc::unbounded_channel::<ConnId>();
        let mut writer = tokio::spawn(
            Writer {
                db,
                mark,
                history_retention: journaling.history_retention,
                batches,
                slow: slow_tx,
                metrics: self.metrics.clone(),
            }
            .run(),
        );
        self.since_checkpoint = journaling.uncheckpointed;
        let mut commands: Vec<Command> = Vec::with_capacity(BATCH_CAP);
        let mut dropped: Vec<ConnId> = Vec::new();
        let failure = loop {
            let deadline = self
                .broker
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => break None,
                // The writer only ends early when a commit failed.
                result = &mut writer => break Some(writer_error(result)),
                n = slow.recv_many(&mut dropped, 1024) => debug_assert!(n > 0),
                n = self.rx.recv_many(&mut commands, BATCH_CAP) => {
                    if n == 0 {
                        break None;
                    }
                }
                () = sleep_until(deadline) => {}
            }
            let now = tokio::time::Instant::now().into_std();
            let queries = self.batch_of(now, &mut commands, &mut dropped);
            // A checkpoint of the state this batch leaves, stored right after its events.
            self.since_checkpoint += self.batch.events.len() as u64;
            if self.since_checkpoint >= journaling.checkpoint_events {
                self.batch.checkpoint = Some(self.broker.checkpoint());
                self.since_checkpoint = 0;
            }
            if !self.batch.is_empty() {
                let batch = std::mem::take(&mut self.batch);
                // Waits while the previous batch is still being committed.
                if to_writer.send(batch).await.is_err() {
                    break Some(writer_error((&mut writer).await));
                }
            }
            // Reads see the engine as of this batch, which the journal has (or is about to
            // have) too; at most one batch ahead of what is durable.
            if !queries.is_empty() {
                let metrics = self.metrics.lock().expect("metrics are never poisoned");
                for query in queries {
                    query(&self.broker, &metrics);
                }
            }
        };
        match failure {
            None => {
                // A last checkpoint, so that the next start reads no events at all.
                if self.since_checkpoint > 0 {
                    let last = Batch {
                        checkpoint: Some(self.broker.checkpoint()),
                        ..Batch::default()
                    };
                    let _ = to_writer.send(last).await;
                }
                // Let the writer finish what it has, so every answer already decided is
                // delivered before the connections close.
                drop(to_writer);
                let result = writer_error((&mut writer).await);
                self.close_all(Ending::ShuttingDown);
                match result {
                    StoreResult::Ok => Ok(()),
                    StoreResult::Err(err) => Err(err),
                }
            }
            Some(result) => {
                let StoreResult::Err(err) = result else {
                    unreachable!("the writer ends early only on an error")
                };
                tracing::error!(
                    "cannot write to the journal, stopping the server: {}",
                    crate::error::chain(&err)
                );
                self.close_all(Ending::JournalFailed);
                Err(err)
            }
        }
    }

    /// Handles one batch of commands (and the connections the writer found too slow), leaving
    /// the result in `self.batch`; returns the reads to answer.
    fn batch_of(
        &mut self,
        now: Instant,
        commands: &mut Vec<Command>,
        dropped: &mut Vec<ConnId>,
    ) -> Vec<Query> {
        let mut metrics = self.metrics.lock().expect("metrics are never poisoned");
        metrics.batches += 1;
        metrics.inputs += (commands.len() + dropped.len()) as u64;
        drop(metrics);
        for conn in dropped.drain(..) {
            // Dropping its outbox ends the connection's task; the engine hears of it as an
            // unclean disconnect, so the client may reconnect and resume.
            if let Some(c) = self.conns.remove(&conn) {
                self.sessions.remove(&c.session);
                tracing::warn!(
                    session = %ShortSessionId::from(&c.session),
                    "closing a connection that stopped reading ({OUTBOX_CAP} messages behind)"
                );
                self.metrics
                    .lock()
                    .expect("metrics are never poisoned")
                    .slow_closed += 1;
                // The client is alive but slow: it may reconnect and resume.
                self.handle(
                    now,
                    Input::Disconnected {
                        session: c.session,
                        how: Disconnect::Lost,
                    },
                );
            }
        }
        let mut queries = Vec::new();
        let woken_by_timer = commands.is_empty();
        for command in commands.drain(..) {
            match command {
                Command::Query(query) => queries.push(query),
                other => self.apply(now, other),
            }
        }
        if woken_by_timer {
            // Every input runs due timers first; Tick is just that.
            self.handle(now, Input::Tick);
        }
        self.batch.events.append(&mut self.out.events);
        queries
    }

    fn apply(&mut self, now: Instant, command: Command) {
        match command {
            Command::Connect {
                conn,
                session,
                resumable,
                outbox,
            } => {
                self.conns.insert(
                    conn,
                    Conn {
                        session: session.clone(),
                        outbox,
                    },
                );
                self.sessions.insert(session.clone(), conn);
                self.handle(now, Input::Connected { session, resumable });
            }
            Command::Message { conn, msg } => {
                // A connection the loop already let go of (closed for a resume elsewhere, or
                // for not reading) may still have frames in flight; they are moot.
                if let Some(c) = self.conns.get(&conn) {
                    let session = c.session.clone();
                    self.handle(now, Input::Message { session, msg });
                }
            }
            Command::Disconnected { conn, hangup } => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.sessions.remove(&c.session);
                    let how = self.disconnect(hangup);
                    tracing::debug!(
                        session = %ShortSessionId::from(&c.session),
                        ?hangup,
                        ?how,
                        "connection ended by the peer"
                    );
                    self.handle(
                        now,
                        Input::Disconnected {
                            session: c.session,
                            how,
                        },
                    );
                }
            }
            Command::Admin { change, reply } => {
                let result = match change {
                    Change::Op(op) => self.admin(now, op),
                    Change::Patch { pool, name, patch } => {
                        match self.patched(&pool, &name, patch) {
                            Ok(resource) => {
                                self.admin(now, AdminOp::ChangeResource { pool, resource })
                            }
                            Err(err) => Err(err),
                        }
                    }
                };
                self.batch.replies.push((reply, result));
            }
            Command::Query(_) => unreachable!("queries are set aside by `batch_of`"),
        }
    }

    /// What a peer's hang-up means for its session's leases. A closed socket is a client
    /// that is gone (its process died, or it let go without a goodbye), and holding its leases
    /// for a resume nobody will send would only keep them from others; silence may be a
    /// network partition, which a resume can heal. Behind a proxy a closed socket can be the
    /// proxy's doing, hence `dropped_connection = "keep"`.
    fn disconnect(&self, hangup: Hangup) -> Disconnect {
        match (hangup, self.dropped_connection) {
            (Hangup::Clean, _) => Disconnect::Clean,
            (Hangup::SocketClosed, DroppedConnection::Release) => Disconnect::Gone,
            (Hangup::SocketClosed, DroppedConnection::Keep) | (Hangup::Lost, _) => Disconnect::Lost,
        }
    }

    fn admin(&mut self, now: Instant, op: AdminOp) -> Result<(), AdminError> {
        self.handle(now, Input::Admin(op));
        self.out.admin.take().unwrap_or(Ok(()))
    }

    /// The resource `name` of `pool` as it is, with `patch` applied.
    fn patched(
        &self,
        pool: &str,
        name: &str,
        patch: ResourcePatch,
    ) -> Result<ResourceConfig, AdminError> {
        let view = self
            .broker
            .pool(pool)
            .ok_or_else(|| AdminError::UnknownPool(pool.to_owned()))?;
        let current = view
            .resources
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| AdminError::UnknownResource {
                pool: pool.to_owned(),
                name: name.to_owned(),
            })?;
        Ok(ResourceConfig {
            name: current.name,
            labels: patch.labels.unwrap_or(current.labels),
            props: patch.props.unwrap_or(current.props),
            capacity: patch.capacity.unwrap_or(current.capacity),
            enabled: patch.enabled.unwrap_or(current.enabled),
        })
    }

    /// Feeds one input to the engine and routes what it says, in the engine's order: close,
    /// adopt, send. Events stay in `out.events` until the batch is complete.
    fn handle(&mut self, now: Instant, input: Input) {
        self.broker.handle_into(now, input, &mut self.out);
        for session in self.out.close.drain(..) {
            if let Some(conn) = self.sessions.remove(&session)
                && let Some(c) = self.conns.remove(&conn)
            {
                self.batch
                    .deliveries
                    .push(Delivery::Close(c.outbox, Ending::Resumed));
            }
        }
        for adoption in self.out.adopted.drain(..) {
            if let Some(conn) = self.sessions.remove(&adoption.connection) {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = adoption.session.clone();
                }
                self.sessions.insert(adoption.session, conn);
            }
        }
        for (session, msg) in self.out.messages.drain(..) {
            // Messages to a session without a connection (orphaned, or gone) have no one to
            // go to; the engine keeps what matters (the leases) for a resume.
            if let Some(&conn) = self.sessions.get(&session)
                && let Some(c) = self.conns.get(&conn)
            {
                self.batch
                    .deliveries
                    .push(Delivery::Send(conn, c.outbox.clone(), msg));
            }
        }
    }

    /// Lets go of every connection: each ends for `ending` once it has written what its
    /// outbox holds. Leases are not released: a server that stops keeps them in the journal,
    /// and after a restart their holders have the resume grace to come back.
    fn close_all(&mut self, ending: Ending) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for (_, conn) in self.conns.drain() {
            let _ = conn.outbox.try_send(Out::Close(ending));
        }
        self.sessions.clear();
    }
}

enum StoreResult {
    Ok,
    Err(StoreError),
}

/// The writer task's outcome; a panic in it is re-raised here.
fn writer_error(result: Result<Result<(), StoreError>, tokio::task::JoinError>) -> StoreResult {
    match result {
        Ok(Ok(())) => StoreResult::Ok,
        Ok(Err(err)) => StoreResult::Err(err),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Sleeps until `deadline`, or for ever if there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

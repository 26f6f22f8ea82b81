//! The engine: one owner feeds it inputs with the current time and gets back what to say,
//! what to store and what to close.
//!
//! It does no I/O, reads no clock, spawns nothing and draws no random numbers, so the same
//! inputs always give the same outputs. That is what lets the property tests drive it through
//! millions of steps, and lets the server be a thin loop: read inputs, call [`Broker::handle`],
//! store [`Outputs::events`], then apply [`Outputs::close`] and [`Outputs::adopted`] and send
//! [`Outputs::messages`], and set one timer for [`Broker::next_deadline`].

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use summoner_protocol::duration::format_duration;
use summoner_protocol::{
    Acquire, ClientMessage, ErrorCode, Grant, LeaseId, LimitExceeded, Limits, PROTOCOL_VERSION,
    RequestId, Resumed, ServerMessage, SessionId, Welcome,
};

use crate::admin::{AdminError, AdminOp, Checked};
use crate::config::{BrokerConfig, ConfigError};
use crate::event::{CancelCause, Event, EventKind, ReleaseCause, RevokeCause};
use crate::ids::{PoolId, QueueKey, ResId};
use crate::lease::{Lease, LeaseIds, LeaseKey, millis};
use crate::pool::Inventory;
use crate::queue::{Queue, Work};
use crate::session::{Presence, Session};
use crate::waiter::{Item, Waiter};

/// The lease engine. See the crate docs for the model and `docs/broker.md` for the policy.
///
/// Its fields are private to this file: every change of state goes through the methods here,
/// which keep the parts consistent with each other (a lease in its session, a waiter's timer,
/// a resource's holders). The other files read the parts through the accessors below.
#[derive(Debug)]
pub struct Broker {
    inv: Inventory,
    /// Every waiting request, by pool and by session, and the position updates.
    queue: Queue,
    sessions: HashMap<SessionId, Session>,
    leases: HashMap<LeaseId, Lease>,
    /// Wait timeouts, max-hold revokes and grace expiries, soonest first.
    timers: BTreeSet<(Instant, Timer)>,
    next_seq: u64,
    resume_grace: Duration,
    limits: Limits,
    /// How leases are named: `lease-N` until the server gives a key.
    lease_ids: LeaseIds,
    counters: Counters,
}

/// Running totals for metrics.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub grants: u64,
    pub releases: u64,
    pub revokes: u64,
    pub timeouts: u64,
    pub cancels: u64,
    pub refusals: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Wait(QueueKey),
    MaxHold(LeaseId),
    Grace(SessionId),
}

/// How a connection ended, as the server tells it: whether its client is gone for good or
/// may come back. A session that is not resumable ends with its connection whichever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The client closed the connection properly (a WebSocket close frame): a deliberate
    /// goodbye. Everything the session holds is released at once.
    Clean,
    /// The connection ended without a close frame, and the server takes the client for gone:
    /// its socket was closed (a TCP FIN or reset), which is what the kernel does for a process
    /// that died. Everything the session holds is released at once, as on a clean close; the
    /// journal still records the close as unclean.
    Gone,
    /// The connection was lost without a word from the client: it fell silent (a network
    /// partition, a stopped process), or the server could not tell the client's end from a
    /// network's. A resumable session keeps its leases for the resume grace.
    Lost,
}

/// What the server tells the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A connection opened; the server chose its session id (unique, hard to guess). The
    /// engine answers `welcome`.
    Connected {
        /// The new session.
        session: SessionId,
        /// Whether the client asked for a session that survives an unclean disconnect for the
        /// resume grace. Otherwise the session ends with its connection, however it ends.
        resumable: bool,
    },
    /// A parsed client message on a session's connection.
    Message {
        /// Whose.
        session: SessionId,
        /// What.
        msg: ClientMessage,
    },
    /// A connection ended, and how (see [`Disconnect`]): that decides whether a resumable
    /// session's leases wait for a resume. A connection the engine asked to close (see
    /// [`Outputs::close`]) must not be reported here.
    Disconnected {
        /// Whose.
        session: SessionId,
        /// How it ended, as far as the server can tell.
        how: Disconnect,
    },
    /// Nothing happened except that time passed: [`Broker::next_deadline`] was reached. (Every
    /// input first handles whatever deadlines `now` has reached, so a late tick loses nothing.)
    Tick,
    /// An administrative change from the HTTP API.
    Admin(AdminOp),
}

/// A new connection continues an existing session (after `resume`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The id the new connection was welcomed with; it ceases to exist.
    pub connection: SessionId,
    /// The session the connection now is. Messages to it go to the new connection.
    pub session: SessionId,
}

/// What the server must do after one input, in this order: store `events` durably; close
/// the connections of the sessions in `close`; re-key the connections in `adopted`; send
/// `messages` in order.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Messages to send, in order, to the connection of each session.
    pub messages: Vec<(SessionId, ServerMessage)>,
    /// Events to store, in order, before any message is sent.
    pub events: Vec<Event>,
    /// Connections to close: a session was resumed on another connection while the old one
    /// still looked open.
    pub close: Vec<SessionId>,
    /// Connections that now continue another session.
    pub adopted: Vec<Adoption>,
    /// The answer to an [`Input::Admin`].
    pub admin: Option<Result<(), AdminError>>,
}

impl Outputs {
    /// Empties every list, keeping their buffers, for [`Broker::handle_into`].
    pub fn clear(&mut self) {
        self.messages.clear();
        self.events.clear();
        self.close.clear();
        self.adopted.clear();
        self.admin = None;
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.events.is_empty()
            && self.close.is_empty()
            && self.adopted.is_empty()
            && self.admin.is_none()
    }
}

/// How a lease ends.
pub(crate) enum End {
    Released(ReleaseCause),
    Revoked(RevokeCause, String),
}

impl Broker {
    /// An engine with the configured pools, no sessions and no leases.
    pub fn new(config: BrokerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            inv: Inventory::from_config(&config)?,
            queue: Queue::new(config.position_interval),
            sessions: HashMap::new(),
            leases: HashMap::new(),
            timers: BTreeSet::new(),
            next_seq: 1,
            resume_grace: config.resume_grace,
            limits: config.limits,
            lease_ids: LeaseIds::default(),
            counters: Counters::default(),
        })
    }

    /// Names every lease granted from now on with a keyed hash of its sequence number instead
    /// of `lease-N`, so that lease ids cannot be guessed (see `docs/broker.md`). A server
    /// calls it once, before serving, with 128 fresh random bits; ids already granted keep
    /// their names.
    pub fn set_lease_key(&mut self, key: LeaseKey) {
        self.lease_ids = LeaseIds::Keyed(key);
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, now: Instant, input: Input) -> Outputs {
        let mut out = Outputs::default();
        self.handle_into(now, input, &mut out);
        out
    }

    /// Like [`Broker::handle`], appending to `out` so a server loop can reuse its buffers
    /// (call [`Outputs::clear`] between batches).
    pub fn handle_into(&mut self, now: Instant, input: Input, out: &mut Outputs) {
        self.fire_due(now, out);
        match input {
            Input::Connected { session, resumable } => self.connect(session, resumable, out),
            Input::Message { session, msg } => self.message(now, session, msg, out),
            Input::Disconnected { session, how } => self.disconnect(now, session, how, out),
            Input::Tick => {}
            Input::Admin(op) => {
                let result = self.admin(now, op, out);
                out.admin = Some(result);
            }
        }
    }

    /// When the engine next needs an [`Input::Tick`]: a wait timeout, a max-hold revoke, a
    /// grace expiry or a position update. `None`: nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|(at, _)| *at);
        match (timer, self.queue.next_sweep()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    // Read access for the views, the restore and the self-check, which live in other files.

    pub(crate) fn inventory(&self) -> &Inventory {
        &self.inv
    }

    pub(crate) fn wait_queue(&self) -> &Queue {
        &self.queue
    }

    pub(crate) fn session_table(&self) -> &HashMap<SessionId, Session> {
        &self.sessions
    }

    pub(crate) fn lease_table(&self) -> &HashMap<LeaseId, Lease> {
        &self.leases
    }

    pub(crate) fn timers(&self) -> &BTreeSet<(Instant, Timer)> {
        &self.timers
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn resume_grace(&self) -> Duration {
        self.resume_grace
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    fn fire_due(&mut self, now: Instant, out: &mut Outputs) {
        while let Some((at, _)) = self.timers.first()
            && *at <= now
        {
            let (_, timer) = self.timers.pop_first().expect("just seen");
            let mut work = Work::new();
            match timer {
                Timer::Wait(key) => {
                    let w = self.remove_waiter(now, key);
                    self.counters.timeouts += 1;
                    let waited = now.saturating_duration_since(w.since);
                    out.messages.push((
                        w.session.clone(),
                        ServerMessage::error(
                            Some(w.id.clone()),
                            ErrorCode::Timeout,
                            format!(
                                "no grant within `wait_ms` ({} ms)",
                                millis(w.deadline.map_or(waited, |d| d - w.since))
                            ),
                        ),
                    ));
                    self.emit(
                        out,
                        EventKind::RequestTimedOut {
                            session: w.session.clone(),
                            id: w.id.clone(),
                            waited_ms: millis(waited),
                        },
                    );
                    self.queue.unblock(&self.inv, &w, &mut work);
                }
                Timer::MaxHold(lease) => {
                    let max_hold = self.leases[&lease].max_hold.expect("a max-hold timer").1;
                    let reason = format!("max hold time {} exceeded", format_duration(max_hold));
                    self.end_lease(
                        now,
                        &lease,
                        End::Revoked(RevokeCause::MaxHold, reason),
                        out,
                        &mut work,
                    );
                }
                Timer::Grace(session) => self.expire(now, session, out, &mut work),
            }
            self.wake(now, work, out);
        }
        if self.queue.next_sweep().is_some_and(|at| at <= now) {
            self.queue.sweep(now, &mut out.messages);
        }
    }

    fn emit(&mut self, out: &mut Outputs, kind: EventKind) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        out.events.push(Event { seq, kind });
        seq
    }

    fn reply(out: &mut Outputs, session: &SessionId, msg: ServerMessage) {
        out.messages.push((session.clone(), msg));
    }

    fn error(
        out: &mut Outputs,
        session: &SessionId,
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    ) {
        Self::reply(out, session, ServerMessage::error(id, code, message));
    }

    fn connect(&mut self, session: SessionId, resumable: bool, out: &mut Outputs) {
        if self.sessions.contains_key(&session) {
            // The server promised unique ids; say so rather than merge two clients' state.
            Self::error(
                out,
                &session,
                None,
                ErrorCode::Internal,
                format!("session id `{session}` is already in use"),
            );
            return;
        }
        self.sessions
            .insert(session.clone(), Session::connected(resumable));
        Self::reply(
            out,
            &session,
            ServerMessage::Welcome(Welcome {
                session: session.clone(),
                protocol: PROTOCOL_VERSION,
                resume_grace_ms: resumable.then(|| millis(self.resume_grace)),
            }),
        );
        self.emit(out, EventKind::SessionConnected { session, resumable });
    }

    fn message(&mut self, now: Instant, session: SessionId, msg: ClientMessage, out: &mut Outputs) {
        if !self
            .sessions
            .get(&session)
            .is_some_and(Session::is_connected)
        {
            Self::error(
                out,
                &session,
                None,
                ErrorCode::Internal,
                format!("session `{session}` is not connected"),
            );
            return;
        }
        match msg {
            ClientMessage::Acquire(acquire) => self.acquire(now, session, acquire, out),
            ClientMessage::Release(release) => {
                let held = self
                    .leases
                    .get(&release.lease)
                    .is_some_and(|l| l.session == session);
                if !held {
                    Self::error(
                        out,
                        &session,
                        None,
                        ErrorCode::UnknownLease,
                        format!("this session holds no lease `{}`", release.lease),
                    );
                    return;
                }
                let mut work = Work::new();
                self.end_lease(
                    now,
                    &release.lease,
                    End::Released(ReleaseCause::Client),
                    out,
                    &mut work,
                );
                self.wake(now, work, out);
            }
            ClientMessage::Cancel(cancel) => {
                let Some(key) = self.queue.pending(&session, &cancel.id) else {
                    Self::error(
                        out,
                        &session,
                        Some(cancel.id.clone()),
                        ErrorCode::UnknownRequest,
                        format!(
                            "no waiting request with id {} (it may have been granted or timed \
                             out already)",
                            cancel.id
                        ),
                    );
                    return;
                };
                let w = self.remove_waiter(now, key);
                self.counters.cancels += 1;
                Self::reply(
                    out,
                    &session,
                    ServerMessage::Cancelled(summoner_protocol::Cancelled { id: w.id.clone() }),
                );
                self.emit(
                    out,
                    EventKind::RequestCancelled {
                        session,
                        id: w.id.clone(),
                        cause: CancelCause::Client,
                    },
                );
                let mut work = Work::new();
                self.queue.unblock(&self.inv, &w, &mut work);
                self.wake(now, work, out);
            }
            ClientMessage::Resume(resume) => self.resume(now, session, resume.session, out),
            ClientMessage::Ping(_) => {
                Self::reply(out, &session, ServerMessage::Pong(Default::default()));
            }
        }
    }

    fn acquire(&mut self, now: Instant, session: SessionId, acquire: Acquire, out: &mut Outputs) {
        if let Err(e) = acquire.validate_with(&self.limits) {
            Self::reply(out, &session, e.to_message());
            return;
        }
        let Acquire {
            id,
            want,
            wait_ms,
            priority,
            note,
        } = acquire;
        if self.queue.pending(&session, &id).is_some() {
            Self::error(
                out,
                &session,
                Some(id.clone()),
                ErrorCode::DuplicateId,
                format!(
                    "a request with id {id} is already waiting on this session; use a new id \
                     or cancel it first"
                ),
            );
            return;
        }
        let mut items = Vec::with_capacity(want.len());
        for item in &want {
            let Some(&pool) = self.inv.pool_ids.get(&item.pool) else {
                let message = self.inv.unknown_pool_message(&item.pool);
                self.counters.refusals += 1;
                Self::error(out, &session, Some(id), ErrorCode::UnknownPool, message);
                return;
            };
            items.push(Item {
                pool,
                count: item.count,
                labels: item.labels.clone(),
            });
        }
        let parts = Waiter::parts_of(&items);
        let key = self.queue.next_key(priority);
        let w = Waiter {
            key,
            session,
            id,
            want,
            items,
            parts,
            note,
            since: now,
            deadline: wait_ms.map(|ms| now + Duration::from_millis(ms)),
            told: 0,
            told_at: now,
        };
        if let Some(message) = w.unsatisfiable(&self.inv) {
            self.counters.refusals += 1;
            Self::error(
                out,
                &w.session,
                Some(w.id),
                ErrorCode::Unsatisfiable,
                message,
            );
            return;
        }
        if let Some(picks) = self.queue.try_assign(&self.inv, &w, None) {
            self.make_lease(now, w, picks, out);
            return;
        }
        if wait_ms == Some(0) {
            self.counters.timeouts += 1;
            Self::error(
                out,
                &w.session,
                Some(w.id),
                ErrorCode::Timeout,
                "not available now, and `wait_ms` is 0".into(),
            );
            return;
        }
        // It waits, if there is room: a session's waiting requests, and all of them, are
        // bounded, so that no client can grow the server's memory (and its journal) at will.
        if let Some(over) = self.no_room(&w.session) {
            self.counters.refusals += 1;
            Self::error(
                out,
                &w.session,
                Some(w.id),
                ErrorCode::TooLarge,
                format!("cannot wait: {over}"),
            );
            return;
        }
        let (session, id, want, deadline) =
            (w.session.clone(), w.id.clone(), w.want.clone(), w.deadline);
        let position = self.queue.enqueue(now, w);
        if let Some(deadline) = deadline {
            self.timers.insert((deadline, Timer::Wait(key)));
        }
        Self::reply(
            out,
            &session,
            ServerMessage::Queued(summoner_protocol::Queued {
                id: id.clone(),
                position,
            }),
        );
        self.emit(
            out,
            EventKind::RequestQueued {
                session,
                id,
                want,
                priority,
                position,
            },
        );
    }

    /// Which bound one more waiting request of `session` would exceed, if any.
    fn no_room(&self, session: &SessionId) -> Option<LimitExceeded> {
        let mine = self.queue.pending_count(session);
        if mine >= self.limits.waiting_per_session {
            return Some(LimitExceeded {
                limit: "waiting_per_session",
                what: "this session".into(),
                unit: "waiting requests",
                actual: mine,
                max: self.limits.waiting_per_session,
            });
        }
        let all = self.queue.len();
        if all >= self.limits.waiting_total {
            return Some(LimitExceeded {
                limit: "waiting_total",
                what: "the server's queue".into(),
                unit: "waiting requests",
                actual: all,
                max: self.limits.waiting_total,
            });
        }
        None
    }

    /// Takes a waiter out of the queue and stops its timer.
    fn remove_waiter(&mut self, now: Instant, key: QueueKey) -> Waiter {
        let w = self.queue.remove(now, key);
        if let Some(deadline) = w.deadline {
            self.timers.remove(&(deadline, Timer::Wait(key)));
        }
        w
    }

    /// Grants every waiter that the changes in `work` made grantable, following the policy
    /// (see `queue.rs`).
    fn wake(&mut self, now: Instant, mut work: Work, out: &mut Outputs) {
        while let Some((p, dirty)) = work.pop() {
            let Some(mut walk) = self.queue.walk(&self.inv, p, dirty) else {
                continue;
            };
            while let Some((key, picks)) = self.queue.next_grant(&self.inv, &mut walk) {
                self.grant_queued(now, key, picks, out, &mut work);
                walk.granted(&self.inv);
            }
        }
    }

    /// Grants a waiting request that the queue walk chose.
    fn grant_queued(
        &mut self,
        now: Instant,
        key: QueueKey,
        picks: Vec<ResId>,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let w = self.remove_waiter(now, key);
        let w = self.make_lease(now, w, picks, out);
        // What it reserved but did not take (a shared resource's other slots, or a resource it
        // matched but did not need) is now open to those behind it.
        self.queue.unblock(&self.inv, &w, work);
    }

    /// Creates the lease for `w` with the resources `picks` and tells its session.
    fn make_lease(
        &mut self,
        now: Instant,
        w: Waiter,
        picks: Vec<ResId>,
        out: &mut Outputs,
    ) -> Waiter {
        let seq = self.next_seq;
        let lease = self.lease_ids.id(seq);
        let max_hold = self
            .inv
            .shortest_max_hold(w.parts.iter().map(|part| part.pool), now);
        let mut resources = Vec::with_capacity(picks.len());
        let mut refs = Vec::with_capacity(picks.len());
        for &r in &picks {
            self.inv.take(r);
            let res = self.inv.res(r);
            resources.push(res.granted(self.inv.pool(res.pool)));
            refs.push(self.inv.reference(r));
        }
        if let Some((at, _)) = max_hold {
            self.timers.insert((at, Timer::MaxHold(lease.clone())));
        }
        self.sessions
            .get_mut(&w.session)
            .expect("a granted session exists")
            .leases
            .insert(lease.clone());
        Self::reply(
            out,
            &w.session,
            ServerMessage::Granted(Grant {
                id: w.id.clone(),
                lease: lease.clone(),
                resources,
            }),
        );
        let emitted = self.emit(
            out,
            EventKind::Granted {
                lease: lease.clone(),
                session: w.session.clone(),
                id: w.id.clone(),
                resources: refs,
                waited_ms: millis(now.saturating_duration_since(w.since)),
                note: w.note.clone(),
            },
        );
        debug_assert_eq!(emitted, seq);
        self.leases.insert(
            lease.clone(),
            Lease {
                id: lease,
                session: w.session.clone(),
                request: w.id.clone(),
                resources: picks,
                granted_at: now,
                max_hold,
                note: w.note.clone(),
                seq,
            },
        );
        self.counters.grants += 1;
        w
    }

    /// Ends a lease, frees its resources (recording them in `work`) and tells whoever must know.
    fn end_lease(
        &mut self,
        now: Instant,
        lease: &LeaseId,
        end: End,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let lease = self.leases.remove(lease).expect("a live lease");
        if let Some((at, _)) = lease.max_hold {
            self.timers.remove(&(at, Timer::MaxHold(lease.id.clone())));
        }
        let connected = match self.sessions.get_mut(&lease.session) {
            Some(session) => {
                session.leases.remove(&lease.id);
                session.is_connected()
            }
            None => false,
        };
        for &r in &lease.resources {
            if self.inv.give_back(r) {
                work.push((self.inv.res(r).pool, vec![r]));
            }
        }
        let held_ms = millis(now.saturating_duration_since(lease.granted_at));
        match end {
            End::Released(cause) => {
                self.counters.releases += 1;
                if cause == ReleaseCause::Client {
                    Self::reply(
                        out,
                        &lease.session,
                        ServerMessage::Released(summoner_protocol::Released {
                            lease: lease.id.clone(),
                        }),
                    );
                }
                self.emit(
                    out,
                    EventKind::Released {
                        lease: lease.id,
                        session: lease.session,
                        cause,
                        held_ms,
                    },
                );
            }
            End::Revoked(cause, reason) => {
                self.counters.revokes += 1;
                if connected {
                    Self::reply(
                        out,
                        &lease.session,
                        ServerMessage::Revoked(summoner_protocol::Revoked {
                            lease: lease.id.clone(),
                            reason: reason.clone(),
                        }),
                    );
                }
                self.emit(
                    out,
                    EventKind::Revoked {
                        lease: lease.id,
                        session: lease.session,
                        cause,
                        reason,
                        held_ms,
                    },
                );
            }
        }
    }

    /// A session's leases, oldest first.
    fn leases_of(&self, session: &Session) -> Vec<LeaseId> {
        let mut leases: Vec<&Lease> = session.leases.iter().map(|l| &self.leases[l]).collect();
        leases.sort_by_key(|l| l.seq);
        leases.into_iter().map(|l| l.id.clone()).collect()
    }

    fn grant_of(&self, lease: &LeaseId) -> Grant {
        let lease = &self.leases[lease];
        Grant {
            id: lease.request.clone(),
            lease: lease.id.clone(),
            resources: lease
                .resources
                .iter()
                .map(|&r| {
                    let res = self.inv.res(r);
                    res.granted(self.inv.pool(res.pool))
                })
                .collect(),
        }
    }

    fn disconnect(&mut self, now: Instant, session: SessionId, how: Disconnect, out: &mut Outputs) {
        // A second report for the same connection, or one for a session the engine closed
        // itself, changes nothing.
        if !self
            .sessions
            .get(&session)
            .is_some_and(Session::is_connected)
        {
            return;
        }
        self.emit(
            out,
            EventKind::SessionDisconnected {
                session: session.clone(),
                clean: how == Disconnect::Clean,
            },
        );
        let mut work = Work::new();
        self.drop_waiting(now, &session, out, &mut work);
        // Only a client that may come back has its leases kept for it.
        if how != Disconnect::Lost || !self.sessions[&session].resumable {
            for lease in self.leases_of(&self.sessions[&session]) {
                self.end_lease(
                    now,
                    &lease,
                    End::Released(ReleaseCause::Disconnect),
                    out,
                    &mut work,
                );
            }
            self.sessions.remove(&session);
        } else {
            let until = now + self.resume_grace;
            self.sessions
                .get_mut(&session)
                .expect("checked above")
                .presence = Presence::Orphaned { until };
            self.timers.insert((until, Timer::Grace(session)));
        }
        self.wake(now, work, out);
    }

    /// Drops what `session` waits for, because its connection ended. Waiting requests die
    /// with the connection however it ends: a resumed client re-sends what it still wants,
    /// and no grant is made to a connection nobody reads.
    fn drop_waiting(
        &mut self,
        now: Instant,
        session: &SessionId,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        for key in self.queue.pending_of(session) {
            let w = self.remove_waiter(now, key);
            self.counters.cancels += 1;
            self.emit(
                out,
                EventKind::RequestCancelled {
                    session: session.clone(),
                    id: w.id.clone(),
                    cause: CancelCause::Disconnect,
                },
            );
            self.queue.unblock(&self.inv, &w, work);
        }
        self.queue.forget_session(session);
    }

    /// The grace period of a dropped session ended.
    fn expire(&mut self, now: Instant, session: SessionId, out: &mut Outputs, work: &mut Work) {
        self.emit(
            out,
            EventKind::SessionExpired {
                session: session.clone(),
            },
        );
        for lease in self.leases_of(&self.sessions[&session]) {
            self.end_lease(
                now,
                &lease,
                End::Released(ReleaseCause::GraceExpired),
                out,
                work,
            );
        }
        self.sessions.remove(&session);
    }

    /// The connection `connection` takes over `target` and its leases.
    fn resume(
        &mut self,
        now: Instant,
        connection: SessionId,
        target: SessionId,
        out: &mut Outputs,
    ) {
        if connection == target {
            let leases = self.leases_of(&self.sessions[&target]);
            let leases = leases.iter().map(|l| self.grant_of(l)).collect();
            Self::reply(
                out,
                &target,
                ServerMessage::Resumed(Resumed {
                    session: target.clone(),
                    leases,
                }),
            );
            return;
        }
        let own = &self.sessions[&connection];
        // The session continues as the new connection asked: resumable or not.
        let resumable = own.resumable;
        if !own.leases.is_empty() || self.queue.pending_count(&connection) > 0 {
            Self::error(
                out,
                &connection,
                None,
                ErrorCode::BadRequest,
                "`resume` must come before any `acquire` on a connection: this session already \
                 holds or waits for resources"
                    .into(),
            );
            return;
        }
        let Some(old) = self.sessions.get(&target) else {
            Self::error(
                out,
                &connection,
                None,
                ErrorCode::UnknownSession,
                format!(
                    "no session `{target}` to resume: it never existed, ended with its \
                     connection, or its grace period of {} ended",
                    format_duration(self.resume_grace)
                ),
            );
            return;
        };
        match old.presence {
            // The old connection still looks open (its peer is gone, or cut off by a network
            // failure, but the ping has not noticed yet): the newest connection wins and the
            // old one is closed. What it waited for ends with it, as on any disconnect, so
            // the client can send it again, as it does after every resume.
            Presence::Connected => {
                let mut work = Work::new();
                self.drop_waiting(now, &target, out, &mut work);
                self.wake(now, work, out);
                out.close.push(target.clone());
            }
            Presence::Orphaned { until } => {
                self.timers.remove(&(until, Timer::Grace(target.clone())));
            }
        }
        let old = self.sessions.get_mut(&target).expect("checked above");
        old.presence = Presence::Connected;
        old.resumable = resumable;
        self.sessions.remove(&connection);
        self.queue.forget_session(&connection);
        out.adopted.push(Adoption {
            connection: connection.clone(),
            session: target.clone(),
        });
        let leases = self.leases_of(&self.sessions[&target]);
        let grants = leases.iter().map(|l| self.grant_of(l)).collect();
        Self::reply(
            out,
            &target,
            ServerMessage::Resumed(Resumed {
                session: target.clone(),
                leases: grants,
            }),
        );
        self.emit(
            out,
            EventKind::SessionResumed {
                session: target,
                connection,
                leases,
            },
        );
    }

    /// Checks an admin operation (see `admin.rs`) and, if it passes, applies it.
    fn admin(&mut self, now: Instant, op: AdminOp, out: &mut Outputs) -> Result<(), AdminError> {
        let leases = &self.leases;
        let change = op.check(&self.inv, |lease| leases.contains_key(lease))?;
        let mut work = Work::new();
        match change {
            Checked::Revoke { lease, reason } => {
                self.end_lease(
                    now,
                    &lease,
                    End::Revoked(RevokeCause::Admin, reason),
                    out,
                    &mut work,
                );
            }
            Checked::Disable { r, pool, name } => {
                if self.inv.res(r).enabled {
                    self.inv.res_mut(r).enabled = false;
                    self.inv.refresh(r);
                    self.emit(out, EventKind::ResourceDisabled { pool, name });
                }
            }
            Checked::Enable { r, pool, name } => {
                if !self.inv.res(r).enabled {
                    self.inv.res_mut(r).enabled = true;
                    if self.inv.refresh(r) {
                        work.push((self.inv.res(r).pool, vec![r]));
                    }
                    self.emit(out, EventKind::ResourceEnabled { pool, name });
                }
            }
            Checked::AddResource { p, pool, resource } => {
                let r = self.inv.add_resource(p, resource.clone());
                if self.inv.res(r).is_available() {
                    work.push((p, vec![r]));
                }
                self.emit(out, EventKind::ResourceAdded { pool, resource });
            }
            Checked::ChangeResource {
                r,
                pool,
                resource,
                because,
            } => {
                let p = self.inv.res(r).pool;
                let res = self.inv.res_mut(r);
                res.labels = resource.labels.clone();
                res.props = resource.props.clone();
                res.capacity = resource.capacity;
                res.enabled = resource.enabled;
                if self.inv.refresh(r) {
                    work.push((p, vec![r]));
                }
                self.emit(out, EventKind::ResourceChanged { pool, resource });
                self.refuse_impossible(now, p, &because, out, &mut work);
            }
            Checked::RemoveResource {
                r,
                pool,
                name,
                reason,
                because,
            } => {
                let p = self.inv.res(r).pool;
                for lease in self.leases_on(|res| res == r) {
                    self.end_lease(
                        now,
                        &lease,
                        End::Revoked(RevokeCause::ResourceRemoved, reason.clone()),
                        out,
                        &mut work,
                    );
                }
                self.inv.remove_resource(r);
                self.emit(out, EventKind::ResourceRemoved { pool, name });
                self.refuse_impossible(now, p, &because, out, &mut work);
            }
            Checked::AddPool { pool } => {
                self.inv.add_pool(&pool)?;
                self.emit(out, EventKind::PoolAdded { pool });
            }
            Checked::RemovePool {
                p,
                pool,
                reason,
                refusal,
            } => {
                let inv = &self.inv;
                for lease in self.leases_on(|res| inv.res(res).pool == p) {
                    self.end_lease(
                        now,
                        &lease,
                        End::Revoked(RevokeCause::PoolRemoved, reason.clone()),
                        out,
                        &mut work,
                    );
                }
                let waiting: Vec<QueueKey> = self.queue.pool(p).iter().copied().collect();
                for key in waiting {
                    self.refuse(
                        now,
                        key,
                        ErrorCode::UnknownPool,
                        refusal.clone(),
                        out,
                        &mut work,
                    );
                }
                debug_assert!(
                    self.queue.pool(p).is_empty(),
                    "removing a pool with waiters"
                );
                self.inv.remove_pool(p);
                self.emit(out, EventKind::PoolRemoved { pool });
            }
        }
        self.wake(now, work, out);
        Ok(())
    }

    /// Leases holding a resource that satisfies `on`, oldest first.
    fn leases_on(&self, on: impl Fn(ResId) -> bool) -> Vec<LeaseId> {
        let mut hit: Vec<(u64, LeaseId)> = self
            .leases
            .values()
            .filter(|l| l.resources.iter().any(|&r| on(r)))
            .map(|l| (l.seq, l.id.clone()))
            .collect();
        hit.sort_unstable();
        hit.into_iter().map(|(_, id)| id).collect()
    }

    /// Answers the waiters of pool `p` that can no longer ever be granted.
    fn refuse_impossible(
        &mut self,
        now: Instant,
        p: PoolId,
        because: &str,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let impossible: Vec<(QueueKey, String)> = self
            .queue
            .pool(p)
            .iter()
            .filter_map(|key| {
                let w = self.queue.get(key).expect("a waiter in its pool's order");
                w.unsatisfiable(&self.inv)
                    .map(|why| (*key, format!("{why} ({because})")))
            })
            .collect();
        for (key, message) in impossible {
            self.refuse(now, key, ErrorCode::Unsatisfiable, message, out, work);
        }
    }

    /// Answers a waiter with an error, and takes it out of the queue.
    fn refuse(
        &mut self,
        now: Instant,
        key: QueueKey,
        code: ErrorCode,
        message: String,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let w = self.remove_waiter(now, key);
        self.counters.refusals += 1;
        out.messages.push((
            w.session.clone(),
            ServerMessage::error(Some(w.id.clone()), code, message.clone()),
        ));
        self.emit(
            out,
            EventKind::RequestFailed {
                session: w.session.clone(),
                id: w.id.clone(),
                code,
                message,
            },
        );
        self.queue.unblock(&self.inv, &w, work);
    }

    // Restoring after a crash (see `restore.rs`, which decides what to put back).

    /// Continues the event sequence of a previous run at `next_seq`, on an engine that has not
    /// emitted anything yet.
    pub(crate) fn continue_at(&mut self, next_seq: u64) {
        debug_assert_eq!(self.next_seq, 1, "continuing after events were emitted");
        self.next_seq = next_seq.max(1);
    }

    /// Records the end of a lease of the previous run that could not be put back.
    pub(crate) fn end_unrestored(
        &mut self,
        lease: LeaseId,
        session: SessionId,
        end: End,
        out: &mut Outputs,
    ) {
        let kind = match end {
            End::Released(cause) => {
                self.counters.releases += 1;
                EventKind::Released {
                    lease,
                    session,
                    cause,
                    held_ms: 0,
                }
            }
            End::Revoked(cause, reason) => {
                self.counters.revokes += 1;
                EventKind::Revoked {
                    lease,
                    session,
                    cause,
                    reason,
                    held_ms: 0,
                }
            }
        };
        self.emit(out, kind);
    }

    /// Puts back a lease of the previous run into its session, which waits orphaned for a
    /// `resume` until `until`. Its resources are held even if that puts them over capacity.
    pub(crate) fn put_back(&mut self, lease: Lease, until: Instant) {
        let session = self
            .sessions
            .entry(lease.session.clone())
            .or_insert_with(|| Session::orphaned(until));
        if session.leases.is_empty() {
            self.timers
                .insert((until, Timer::Grace(lease.session.clone())));
        }
        session.leases.insert(lease.id.clone());
        for &r in &lease.resources {
            self.inv.res_mut(r).held += 1;
            self.inv.refresh(r);
        }
        if let Some((at, _)) = lease.max_hold {
            self.timers.insert((at, Timer::MaxHold(lease.id.clone())));
        }
        self.leases.insert(lease.id.clone(), lease);
    }
}

//! The connection task: the one owner of the WebSocket.
//!
//! Every [`crate::Client`] handle, lease and guard talks to it through one unbounded channel
//! of [`Command`]s, and it alone reads frames and routes them: `queued`, `granted` and
//! `error {id}` to the waiting request with that id, `released` and `revoked` to the lease.
//! Keeping all state in one task means no locks, and it is what makes reconnecting simple:
//! the state (requests that wait, leases that are held, releases not yet confirmed) is the
//! truth, and after a `resume` the task re-sends whatever the new connection has not seen.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use summoner_protocol::{
    Acquire, Cancel, ClientMessage, ErrorCode, Grant, GrantedResource, LeaseId, Release, RequestId,
    Resume, ServerMessage, SessionId, Want,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;
use crate::request::QueuedCallback;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// tungstenite's read buffer; larger frames (a `resumed` with many leases) still arrive, in
/// several reads.
const READ_BUFFER: usize = 4 * 1024;

/// What the connection task hands over when a request is granted.
#[derive(Debug)]
pub(crate) struct Granted {
    pub(crate) request: RequestId,
    pub(crate) lease: LeaseId,
    pub(crate) resources: Vec<GrantedResource>,
    pub(crate) session: SessionId,
    pub(crate) ended: watch::Receiver<Option<String>>,
}

/// What handles ask the connection task to do.
pub(crate) enum Command {
    Acquire {
        id: u64,
        request: Outgoing,
        on_queued: Option<QueuedCallback>,
        reply: oneshot::Sender<Result<Granted, Error>>,
    },
    /// The acquire's future was dropped before it completed.
    Cancel {
        id: u64,
    },
    Release {
        lease: LeaseId,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// An acquire as the task keeps it, so it can be sent again after a reconnect.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) want: Vec<Want>,
    pub(crate) priority: i32,
    pub(crate) note: Option<String>,
    /// How long the caller is willing to wait, from `since`; a re-sent request asks only
    /// for what is left.
    pub(crate) wait: Option<Duration>,
    pub(crate) since: Instant,
}

/// How the task connects, and reconnects.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    /// The lease endpoint, as errors show it.
    pub(crate) url: String,
    /// Whether to ask for a resumable session (`?resumable=true`).
    pub(crate) resumable: bool,
    pub(crate) token: Option<String>,
    pub(crate) connect_timeout: Duration,
    /// How long to keep trying to reconnect and resume; `None` gives up at once.
    pub(crate) reconnect_for: Option<Duration>,
}

/// Opens a connection and reads its `welcome`.
pub(crate) async fn open(dial: &Dial) -> Result<(Ws, SessionId), Error> {
    match tokio::time::timeout(dial.connect_timeout, open_inner(dial)).await {
        Ok(result) => result,
        Err(_) => Err(Error::Connect {
            url: dial.url.clone(),
            source: Box::new(tungstenite::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", dial.connect_timeout),
            ))),
        }),
    }
}

async fn open_inner(dial: &Dial) -> Result<(Ws, SessionId), Error> {
    let target = if dial.resumable {
        let joint = if dial.url.contains('?') { '&' } else { '?' };
        format!("{}{joint}resumable=true", dial.url)
    } else {
        dial.url.clone()
    };
    let mut request = target
        .as_str()
        .into_client_request()
        .map_err(|e| Error::InvalidUrl {
            url: dial.url.clone(),
            reason: e.to_string(),
        })?;
    if let Some(token) = &dial.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::Unauthorized("the token contains characters not allowed in a header".into())
        })?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    // Nagle off: every frame is a small request that someone waits for. Small buffers:
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before each read,
    // which for frames of a few hundred bytes costs more than the rest of the work, and a
    // process holding many connections would hold that much memory per connection.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| handshake_error(&dial.url, e))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match ServerMessage::parse(text.as_str()) {
                    Ok(ServerMessage::Welcome(welcome)) => Ok((ws, welcome.session)),
                    Ok(ServerMessage::Error(reply)) => Err(Error::from_reply(&reply)),
                    Ok(other) => Err(Error::Protocol(format!(
                        "expected `welcome` first, got {}",
                        other.to_json()
                    ))),
                    Err(e) => Err(Error::Protocol(format!("expected `welcome` first: {e}"))),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(Error::ConnectionLost {
                    url: dial.url.clone(),
                    reason: match frame {
                        Some(f) if !f.reason.is_empty() => {
                            format!("the server closed the connection: {}", f.reason)
                        }
                        _ => "the server closed the connection before `welcome`".into(),
                    },
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Err(Error::Connect {
                    url: dial.url.clone(),
                    source: Box::new(e),
                });
            }
            None => {
                return Err(Error::ConnectionLost {
                    url: dial.url.clone(),
                    reason: "the server closed the connection before `welcome`".into(),
                });
            }
        }
    }
}

/// Turns a refused upgrade into the error a user can act on: a 401 is about the token, a 404
/// about the URL.
fn handshake_error(url: &str, err: tungstenite::Error) -> Error {
    if let tungstenite::Error::Http(response) = &err {
        let body = response
            .body()
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        // The server answers `{code, message}`; show the message when there is one.
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(body);
        match response.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let message = if message.trim().is_empty() {
                    format!("{url} refused the connection ({})", response.status())
                } else {
                    message
                };
                return Error::Unauthorized(message);
            }
            StatusCode::NOT_FOUND => {
                return Error::Connect {
                    url: url.to_owned(),
                    source: Box::new(tungstenite::Error::Io(std::io::Error::other(
                        "404 not found: is this a summoner server?",
                    ))),
                };
            }
            _ => {}
        }
    }
    Error::Connect {
        url: url.to_owned(),
        source: Box::new(err),
    }
}

/// A request waiting for its answer.
struct Pending {
    request: Outgoing,
    on_queued: Option<QueuedCallback>,
    reply: oneshot::Sender<Result<Granted, Error>>,
}

/// A lease this session holds.
struct Held {
    /// Set (with the reason) when the lease ends; [`crate::Lease::revoked`] waits on it.
    ended: watch::Sender<Option<String>>,
    /// `Some` once a release was asked for: who waits for its confirmation.
    releasing: Option<Vec<oneshot::Sender<Result<(), Error>>>>,
}

impl Held {
    /// The lease ended without a release: tell [`crate::Lease::revoked`] why.
    fn end(self, reason: &str) {
        self.ended.send_replace(Some(reason.to_owned()));
        self.released();
    }

    /// The lease is no longer held; whoever asked for the release hears so. (Dropping the
    /// `ended` sender without a value keeps `revoked()` pending: a release is not a revoke.)
    fn released(self) {
        for waiter in self.releasing.into_iter().flatten() {
            let _ = waiter.send(Ok(()));
        }
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Close(Option<oneshot::Sender<()>>),
}

/// The connection task's state.
pub(crate) struct Driver {
    dial: Dial,
    rx: mpsc::UnboundedReceiver<Command>,
    session: watch::Sender<SessionId>,
    /// Waiting requests, by id, in the order they were made (ids grow).
    pending: BTreeMap<u64, Pending>,
    leases: HashMap<LeaseId, Held>,
    /// Releases sent on this connection and not yet answered, oldest first: the server
    /// answers in order, and its `unknown_lease` error carries no id.
    in_flight: VecDeque<LeaseId>,
    /// Frames to write on the current connection.
    outbox: Vec<String>,
}

impl Driver {
    pub(crate) fn new(
        dial: Dial,
        rx: mpsc::UnboundedReceiver<Command>,
        session: watch::Sender<SessionId>,
    ) -> Self {
        Driver {
            dial,
            rx,
            session,
            pending: BTreeMap::new(),
            leases: HashMap::new(),
            in_flight: VecDeque::new(),
            outbox: Vec::new(),
        }
    }

    /// Runs until the client is closed, every handle is dropped, or the connection is lost
    /// for good.
    pub(crate) async fn run(mut self, mut ws: Ws) {
        loop {
            if !self.outbox.is_empty()
                && let Err(e) = self.flush(&mut ws).await
            {
                match self.recover(format!("cannot send: {e}")).await {
                    Some(new) => ws = new,
                    None => return,
                }
                continue;
            }
            tokio::select! {
                cmd = self.rx.recv() => {
                    let mut flow = match cmd {
                        Some(cmd) => self.command(cmd),
                        None => Flow::Close(None),
                    };
                    // Drain what else is ready, so a burst of commands becomes one write.
                    while matches!(flow, Flow::Continue) {
                        match self.rx.try_recv() {
                            Ok(cmd) => flow = self.command(cmd),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => flow = Flow::Close(None),
                        }
                    }
                    if let Flow::Close(reply) = flow {
                        self.close(ws).await;
                        if let Some(reply) = reply {
                            let _ = reply.send(());
                        }
                        return;
                    }
                }
                frame = ws.next() => {
                    let lost = match frame {
                        Some(Ok(Message::Text(text))) => {
                            self.frame(text.as_str());
                            None
                        }
                        Some(Ok(Message::Close(frame))) => Some(match frame {
                            Some(f) if !f.reason.is_empty() => {
                                format!("the server closed the connection ({}: {})", f.code, f.reason)
                            }
                            Some(f) => format!("the server closed the connection ({})", f.code),
                            None => "the server closed the connection".to_owned(),
                        }),
                        Some(Ok(_)) => None,
                        Some(Err(e)) => Some(e.to_string()),
                        None => Some("the connection was closed".to_owned()),
                    };
                    if let Some(reason) = lost {
                        match self.recover(reason).await {
                            Some(new) => ws = new,
                            None => return,
                        }
                    }
                }
            }
        }
    }

    async fn flush(&mut self, ws: &mut Ws) -> Result<(), tungstenite::Error> {
        for frame in self.outbox.drain(..) {
            ws.feed(Message::text(frame)).await?;
        }
        ws.flush().await
    }

    /// Applies a command to the state, queueing the frames it needs.
    fn command(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Acquire {
                id,
                request,
                on_queued,
                reply,
            } => {
                self.outbox.push(acquire_frame(id, &request, false));
                self.pending.insert(
                    id,
                    Pending {
                        request,
                        on_queued,
                        reply,
                    },
                );
            }
            Command::Cancel { id } => {
                if self.pending.remove(&id).is_some() {
                    self.outbox.push(
                        ClientMessage::Cancel(Cancel {
                            id: RequestId::from(id),
                        })
                        .to_json(),
                    );
                }
            }
            Command::Release { lease, reply } => match self.leases.get_mut(&lease) {
                None => {
                    // Already ended: revoked, or released by another handle.
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                }
                Some(held) => {
                    let first = held.releasing.is_none();
                    held.releasing.get_or_insert_with(Vec::new).extend(reply);
                    if first {
                        self.send_release(lease);
                    }
                }
            },
            Command::Close { reply } => return Flow::Close(Some(reply)),
        }
        Flow::Continue
    }

    fn send_release(&mut self, lease: LeaseId) {
        self.outbox.push(
            ClientMessage::Release(Release {
                lease: lease.clone(),
            })
            .to_json(),
        );
        self.in_flight.push_back(lease);
    }

    /// Routes one frame from the server.
    fn frame(&mut self, text: &str) {
        let msg = match ServerMessage::parse(text) {
            Ok(msg) => msg,
            Err(e) => {
                // A newer server may send messages this client does not know.
                tracing::warn!(
                    "ignoring a frame from the server that does not parse ({e}): {text}"
                );
                return;
            }
        };
        match msg {
            ServerMessage::Queued(queued) => {
                if let Some(pending) =
                    request_number(&queued.id).and_then(|n| self.pending.get_mut(&n))
                    && let Some(callback) = &mut pending.on_queued
                {
                    callback(queued.position);
                }
            }
            ServerMessage::Granted(grant) => self.granted(grant),
            ServerMessage::Released(released) => {
                self.answered(&released.lease);
                if let Some(held) = self.leases.remove(&released.lease) {
                    held.released();
                }
            }
            ServerMessage::Revoked(revoked) => {
                if let Some(held) = self.leases.remove(&revoked.lease) {
                    tracing::warn!("lease {} revoked: {}", revoked.lease, revoked.reason);
                    held.end(&format!("revoked by the server: {}", revoked.reason));
                }
            }
            ServerMessage::Error(reply) => match reply.id.as_ref().and_then(request_number) {
                Some(n) => {
                    if let Some(pending) = self.pending.remove(&n) {
                        let _ = pending.reply.send(Err(Error::from_reply(&reply)));
                    }
                    // Otherwise it answers a `cancel` that crossed a grant or a timeout.
                }
                None if reply.code == ErrorCode::UnknownLease => {
                    // The lease ended before our release arrived (revoked meanwhile): it is
                    // not held, which is what the release wanted.
                    if let Some(lease) = self.in_flight.pop_front()
                        && let Some(held) = self.leases.remove(&lease)
                    {
                        held.released();
                    }
                }
                None => {
                    tracing::warn!("error from the server: {}: {}", reply.code, reply.message)
                }
            },
            ServerMessage::Welcome(_)
            | ServerMessage::Resumed(_)
            | ServerMessage::Cancelled(_)
            | ServerMessage::Pong(_) => {}
        }
    }

    fn answered(&mut self, lease: &LeaseId) {
        if let Some(i) = self.in_flight.iter().position(|l| l == lease) {
            self.in_flight.remove(i);
        }
    }

    fn granted(&mut self, grant: Grant) {
        let (ended_tx, ended_rx) = watch::channel(None);
        let pending = request_number(&grant.id).and_then(|n| self.pending.remove(&n));
        let mut held = Held {
            ended: ended_tx,
            releasing: None,
        };
        match pending {
            Some(pending) => {
                let granted = Granted {
                    request: grant.id,
                    lease: grant.lease.clone(),
                    resources: grant.resources,
                    session: self.session.borrow().clone(),
                    ended: ended_rx,
                };
                if pending.reply.send(Ok(granted)).is_err() {
                    // The caller stopped waiting just as the grant arrived.
                    held.releasing = Some(Vec::new());
                    self.leases.insert(grant.lease.clone(), held);
                    self.send_release(grant.lease);
                } else {
                    self.leases.insert(grant.lease, held);
                }
            }
            None => {
                // A grant for a request we cancelled: the cancel crossed it. Give it back.
                held.releasing = Some(Vec::new());
                self.leases.insert(grant.lease.clone(), held);
                self.send_release(grant.lease);
            }
        }
    }

    /// Closes cleanly: the server releases everything at once on a close frame.
    async fn close(&mut self, mut ws: Ws) {
        let _ = self.flush(&mut ws).await;
        let _ = ws.close(None).await;
        // Wait (briefly) for the server's close, so the release is done when we return.
        let drain = async {
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame {
                    self.frame(text.as_str());
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        self.finish(|| Error::Closed, "the client was closed");
    }

    /// Ends every request and lease: the task is about to stop.
    fn finish(&mut self, error: impl Fn() -> Error, reason: &str) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            let _ = pending.reply.send(Err(error()));
        }
        for (_, held) in self.leases.drain() {
            held.end(reason);
        }
        self.in_flight.clear();
        self.outbox.clear();
    }

    /// After the connection dropped: reconnects with backoff and resumes the session, then
    /// re-sends what the server dropped. `None` when the client should stop.
    async fn recover(&mut self, reason: String) -> Option<Ws> {
        let url = self.dial.url.clone();
        let Some(limit) = self.dial.reconnect_for else {
            let lost = || Error::ConnectionLost {
                url: url.clone(),
                reason: reason.clone(),
            };
            self.finish(lost, &format!("lost with the connection: {reason}"));
            return None;
        };
        tracing::warn!("connection to {url} lost ({reason}); reconnecting");
        let started = Instant::now();
        let mut delay = Duration::from_millis(25);
        loop {
            let last = match self.resume().await {
                Ok(ws) => return Some(ws),
                Err(e @ (Error::Unauthorized(_) | Error::InvalidUrl { .. })) => {
                    let reason = format!("{reason}; reconnecting failed: {e}");
                    self.give_up(&url, &reason);
                    return None;
                }
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= limit {
                let reason = format!(
                    "{reason}; could not reconnect within {}s: {last}",
                    limit.as_secs_f64()
                );
                self.give_up(&url, &reason);
                return None;
            }
            // Keep serving commands while waiting, so a close is not delayed by the backoff.
            let until = Instant::now() + delay;
            delay = (delay * 2).min(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    cmd = self.rx.recv() => {
                        let flow = match cmd {
                            Some(cmd) => self.command(cmd),
                            None => Flow::Close(None),
                        };
                        if let Flow::Close(reply) = flow {
                            self.finish(|| Error::Closed, "the client was closed");
                            if let Some(reply) = reply {
                                let _ = reply.send(());
                            }
                            return None;
                        }
                    }
                }
            }
        }
    }

    fn give_up(&mut self, url: &str, reason: &str) {
        tracing::warn!("giving up on {url}: {reason}");
        let lost = || Error::ConnectionLost {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        self.finish(lost, &format!("lost with the connection: {reason}"));
    }

    /// One attempt: connect, `resume`, reconcile, and queue everything to re-send.
    async fn resume(&mut self) -> Result<Ws, Error> {
        let (mut ws, fresh) = open(&self.dial).await?;
        let old = self.session.borrow().clone();
        let frame = ClientMessage::Resume(Resume {
            session: old.clone(),
        })
        .to_json();
        ws.send(Message::text(frame))
            .await
            .map_err(|e| self.lost(format!("cannot send `resume`: {e}")))?;
        let answer = tokio::time::timeout(self.dial.connect_timeout, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => match ServerMessage::parse(text.as_str()) {
                        Ok(ServerMessage::Resumed(resumed)) => return Ok(Some(resumed.leases)),
                        Ok(ServerMessage::Error(reply)) if reply.id.is_none() => {
                            return Ok(match reply.code {
                                ErrorCode::UnknownSession => None,
                                _ => {
                                    tracing::warn!(
                                        "cannot resume session {old}: {}: {}",
                                        reply.code,
                                        reply.message
                                    );
                                    None
                                }
                            });
                        }
                        _ => continue,
                    },
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("waiting for `resumed`: {e}")),
                    None => return Err("closed while waiting for `resumed`".to_owned()),
                }
            }
        })
        .await
        .map_err(|_| self.lost("no answer to `resume`".to_owned()))?
        .map_err(|e| self.lost(e))?;

        self.outbox.clear();
        self.in_flight.clear();
        let mut extras = Vec::new();
        match answer {
            Some(leases) => {
                tracing::info!("resumed session {old} with {} lease(s)", leases.len());
                let mut kept: HashMap<LeaseId, Grant> =
                    leases.into_iter().map(|g| (g.lease.clone(), g)).collect();
                // Leases that did not survive the gap (the grace ended, an admin revoked them).
                let gone: Vec<LeaseId> = self
                    .leases
                    .keys()
                    .filter(|l| !kept.contains_key(*l))
                    .cloned()
                    .collect();
                for lease in gone {
                    match self.leases.remove(&lease) {
                        Some(held) if held.releasing.is_some() => held.released(),
                        Some(held) => held.end("lost while the connection was down"),
                        None => {}
                    }
                }
                for lease in self.leases.keys() {
                    kept.remove(lease);
                }
                // What is left was granted while the connection went down: either the answer
                // to a request still waiting here, or one nobody wants any more.
                extras.extend(kept.into_values());
            }
            None => {
                tracing::warn!("session {old} could not be resumed; continuing as {fresh}");
                self.session.send_replace(fresh);
                for (_, held) in self.leases.drain() {
                    held.end("lost: the server ended the session while the connection was down");
                }
            }
        }
        let releasing: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, h)| h.releasing.is_some())
            .map(|(l, _)| l.clone())
            .collect();
        for lease in releasing {
            self.send_release(lease);
        }
        for grant in extras {
            self.granted(grant);
        }
        for (&id, pending) in &self.pending {
            self.outbox.push(acquire_frame(id, &pending.request, true));
        }
        Ok(ws)
    }

    fn lost(&self, reason: String) -> Error {
        Error::ConnectionLost {
            url: self.dial.url.clone(),
            reason,
        }
    }
}

fn acquire_frame(id: u64, request: &Outgoing, resent: bool) -> String {
    let wait_ms = request.wait.map(|wait| {
        let left = if resent {
            wait.saturating_sub(request.since.elapsed())
        } else {
            wait
        };
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    });
    ClientMessage::Acquire(Acquire {
        id: RequestId::from(id),
        want: request.want.clone(),
        wait_ms,
        priority: request.priority,
        note: request.note.clone(),
    })
    .to_json()
}

/// Ids this client made are plain counters; anything else is not ours.
fn request_number(id: &RequestId) -> Option<u64> {
    match id {
        RequestId::Number(n) => n.as_u64(),
        RequestId::String(_) => None,
    }
}

//! The accept loop: every connection has a slot, a deadline for each request, and may be
//! closed to make room for a newer one until its request has arrived.
//!
//! axum's `serve` accepts whatever comes and waits for a request for ever, so a client that
//! connects and never finishes its request (silent, a byte every two seconds, a header that
//! never ends) held a file handle for ever; about 1,100 of them exhausted the open-files
//! limit, and `/healthz` and every new client then hung. So the server drives hyper's HTTP/1
//! connections itself:
//!
//! - **Deadlines.** A request's head (the WebSocket handshake included) must arrive within
//!   `http.request_read_timeout` of the connection's start or of the previous response
//!   (hyper's `header_read_timeout`), and its body within as long again ([`track`]). A
//!   connection that misses one is closed.
//! - **Slots.** At most `max_connections` connections are open at once, WebSockets included,
//!   and that is lowered at start to fit the open-files limit. A connection keeps its slot
//!   until its socket closes, after the upgrade too (the slot travels with the socket).
//! - **Who goes first.** A connection is *waiting* from its start until its request has fully
//!   arrived, and again after each response; *busy* while its request is handled; *upgraded*
//!   once it is a WebSocket. When every slot is taken, a new connection closes the one that
//!   has been waiting longest and takes its slot: a stalled client gives way to a new one, so
//!   `/healthz` and a new WebSocket client are answered however many sockets an attacker
//!   holds open, while WebSocket sessions and requests in progress are never disturbed. Only
//!   when no connection is waiting is a new one refused (a 503 `too_many_connections`, then
//!   closed). Refusals and sheds are counted in the metrics and logged, at most one line per
//!   ten seconds.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONNECTION, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use summoner_protocol::api::{self, ApiErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

use crate::config::DEFAULT_MAX_CONNECTIONS;
use crate::error::ApiError;
use crate::metrics::ConnectionStats;

/// File handles kept for everything but connections: the journal and its readers (three
/// files each), the listener, the runtime's own, standard streams, and slack for whatever a
/// later part of the server opens.
const FILES_FOR_THE_REST: u64 = 128;

/// The shortest time between two log lines about refused or shed connections: under attack
/// there is one per connection, and the log must stay readable (the metrics count them all).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The bounds, from `[http]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most connections open at once (already lowered to fit the open-files limit).
    pub max_connections: usize,
    /// For a request's head, and again for its body.
    pub read_timeout: Duration,
}

impl Limits {
    /// `max_connections` as configured, lowered if the open-files limit cannot hold that many
    /// besides what the rest of the server needs. Logs the limit in force, and warns when it
    /// was lowered.
    pub fn new(max_connections: usize, read_timeout: Duration) -> Self {
        let open_files = open_files_limit();
        let max = fit(max_connections, open_files);
        match open_files {
            // The default asks for "as many as the machine allows, up to 20,000"; only a
            // bound someone wrote in the config is worth a warning when it cannot be met.
            Some(files) if max < max_connections && max_connections == DEFAULT_MAX_CONNECTIONS => {
                tracing::info!(
                    "at most {max} connections (the open-files limit is {files}; raise it with \
                     ulimit -n to allow up to http.max_connections = {max_connections})"
                )
            }
            Some(files) if max < max_connections => tracing::warn!(
                "at most {max} connections (not http.max_connections = {max_connections}): the \
                 open-files limit is {files}; raise it (ulimit -n) to allow more"
            ),
            Some(files) => tracing::info!(
                "at most {max} connections (http.max_connections; the open-files limit is {files})"
            ),
            None => tracing::info!("at most {max} connections (http.max_connections)"),
        }
        Self {
            max_connections: max,
            read_timeout,
        }
    }
}

/// `wanted`, lowered to leave [`FILES_FOR_THE_REST`] of `open_files` free (but never below 1).
fn fit(wanted: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(files) => {
            let room =
                usize::try_from(files.saturating_sub(FILES_FOR_THE_REST)).unwrap_or(usize::MAX);
            wanted.min(room).max(1)
        }
        None => wanted,
    }
}

/// The soft open-files limit of this process (`summoner serve` raised it to the hard limit
/// before starting the server).
fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, lets each
/// connection finish the request it is handling, and returns once every connection not
/// upgraded to a WebSocket has closed (WebSockets are the broker loop's to close).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(Slots::new(limits, stats));
    // Turns every route into its final form once, rather than on every request (as axum's
    // own `serve` does).
    let router: Router = router.with_state(());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    // Each connection task holds a receiver; `closed()` on the sender says they are all gone.
    let (alive, alive_rx) = watch::channel(());
    let refusal = refusal_response(limits.max_connections);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                slots.accept_failed(&err).await;
                continue;
            }
        };
        // Nagle off. Every message is small and someone waits for it, and Nagle holds a small
        // segment back while an earlier one is unacknowledged: a waiter that was sent `queued`
        // and has sent nothing since (so its kernel delays the ACK, by up to 40 ms) got its
        // `granted` 40 ms late. Measured with `summoner bench broker --handover`: 42 ms
        // before, well under a millisecond after.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {err}");
        }
        let Some(conn) = slots.admit().await else {
            // The socket's send buffer is empty, so the answer fits at once; a client that
            // already sent its request may see a reset instead, as the socket closes unread.
            let _ = stream.try_write(&refusal);
            continue;
        };
        let io = TokioIo::new(Slotted {
            stream,
            _slot: Slot(conn.clone()),
        });
        tokio::spawn(serve_connection(
            io,
            conn,
            router.clone(),
            http.clone(),
            stop.clone(),
            alive_rx.clone(),
        ));
    }
    drop(alive_rx);
    alive.closed().await;
    Ok(())
}

/// One connection, until it closes, upgrades, is shed, or the server stops.
async fn serve_connection(
    io: TokioIo<Slotted>,
    conn: Arc<Conn>,
    router: Router,
    http: http1::Builder,
    mut stop: watch::Receiver<bool>,
    _alive: watch::Receiver<()>,
) {
    let service = ConnService {
        router: TowerToHyperService::new(router),
        conn: conn.clone(),
    };
    let connection = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    if err.is_timeout() {
                        ConnectionStats::bump(&conn.slots.stats.timed_out);
                        tracing::debug!("closed a connection whose request did not arrive in time");
                    } else {
                        tracing::debug!("connection failed: {err}");
                    }
                }
                break;
            }
            () = conn.shed.notified() => {
                tracing::debug!("closed a waiting connection to make room for a new one");
                break;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The answer to a connection refused at the limit, written before it is closed.
fn refusal_response(max: usize) -> Vec<u8> {
    let body = serde_json::to_string(&api::ApiError {
        code: ApiErrorCode::TooManyConnections,
        message: format!(
            "the server has {max} connections open (its limit, `http.max_connections`), all \
             of them WebSockets or requests in progress; try again later"
        ),
    })
    .expect("an API error serializes");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Every connection's slot, and which ones are waiting for a request, oldest first.
#[derive(Debug)]
struct Slots {
    limits: Limits,
    table: Mutex<Table>,
    /// Signalled whenever a slot is freed (for an accept that waits for a shed connection to
    /// close).
    freed: Notify,
    stats: Arc<ConnectionStats>,
    log: Mutex<Throttle>,
}

#[derive(Debug, Default)]
struct Table {
    /// Connections holding a slot.
    open: usize,
    /// Connections told to close to make room, that have not closed yet.
    closing: usize,
    /// The waiting connections, by when they started waiting (a sequence number, so that the
    /// first entry is the one that has waited longest).
    waiting: BTreeMap<u64, Arc<Conn>>,
    next_key: u64,
}

impl Table {
    /// Puts `conn` at the end of the waiting line (taking it out of its old place, if any).
    fn wait(&mut self, conn: &Arc<Conn>) {
        self.unwait(conn);
        self.next_key += 1;
        conn.key.store(self.next_key, Ordering::Relaxed);
        self.waiting.insert(self.next_key, conn.clone());
    }

    /// Takes `conn` out of the waiting line, if it is in it.
    fn unwait(&mut self, conn: &Conn) {
        let key = conn.key.swap(0, Ordering::Relaxed);
        if key != 0 {
            self.waiting.remove(&key);
        }
    }
}

/// What happened to an accepted socket.
enum Admission {
    Admitted(Arc<Conn>),
    /// A waiting connection was told to close; try again once it has.
    Wait,
    Refused,
}

impl Slots {
    fn new(limits: Limits, stats: Arc<ConnectionStats>) -> Self {
        stats
            .limit
            .store(limits.max_connections as u64, Ordering::Relaxed);
        Self {
            limits,
            table: Mutex::new(Table::default()),
            freed: Notify::new(),
            stats,
            log: Mutex::new(Throttle::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The lock is never held across anything that can panic halfway.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection: a free one, else the slot of the connection that has
    /// waited longest for a request, once it has closed. `None` when every slot is held by a
    /// WebSocket or a request in progress (or the connection told to make room does not
    /// close in time).
    async fn admit(self: &Arc<Self>) -> Option<Arc<Conn>> {
        loop {
            // A slot freed between `try_admit` and the wait leaves a permit, so it is not
            // missed.
            let freed = self.freed.notified();
            match self.try_admit() {
                Admission::Admitted(conn) => return Some(conn),
                Admission::Refused => {
                    ConnectionStats::bump(&self.stats.refused);
                    self.note(
                        "refused a connection: every slot is a WebSocket or a request in progress",
                    );
                    return None;
                }
                Admission::Wait => {
                    // A shed connection closes as soon as its task runs; the deadline only
                    // guards against a bug turning the accept loop into a hang.
                    if tokio::time::timeout(self.limits.read_timeout, freed)
                        .await
                        .is_err()
                    {
                        tracing::warn!("a connection told to make room did not close");
                        return None;
                    }
                }
            }
        }
    }

    fn try_admit(self: &Arc<Self>) -> Admission {
        let mut table = self.table();
        if table.open < self.limits.max_connections {
            table.open += 1;
            self.stats.open.store(table.open as u64, Ordering::Relaxed);
            let conn = Arc::new(Conn {
                slots: self.clone(),
                key: AtomicU64::new(0),
                shedding: AtomicBool::new(false),
                shed: Notify::new(),
            });
            table.wait(&conn);
            return Admission::Admitted(conn);
        }
        if table.closing > 0 {
            return Admission::Wait;
        }
        let Some((_, victim)) = table.waiting.pop_first() else {
            return Admission::Refused;
        };
        victim.key.store(0, Ordering::Relaxed);
        victim.shedding.store(true, Ordering::Relaxed);
        table.closing += 1;
        drop(table);
        victim.shed.notify_one();
        ConnectionStats::bump(&self.stats.shed);
        self.note(
            "at the connection limit: closed the connection that had waited longest for a request",
        );
        Admission::Wait
    }

    /// Frees `conn`'s slot: its socket is closed.
    fn free(&self, conn: &Conn) {
        let mut table = self.table();
        table.unwait(conn);
        table.open -= 1;
        if conn.shedding.load(Ordering::Relaxed) {
            table.closing -= 1;
        }
        self.stats.open.store(table.open as u64, Ordering::Relaxed);
        drop(table);
        self.freed.notify_one();
    }

    /// An accept that failed. Running out of file handles (which the limit should prevent,
    /// unless something else in the process holds many) sheds the connection that has waited
    /// longest, or pauses a moment, rather than spinning; anything else was the peer's
    /// problem.
    async fn accept_failed(self: &Arc<Self>, err: &io::Error) {
        let out_of_files = matches!(
            err.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !out_of_files {
            tracing::debug!("accept failed: {err}");
            return;
        }
        self.note(&format!("cannot accept a connection: {err}"));
        let victim = {
            let mut table = self.table();
            let victim = table.waiting.pop_first().map(|(_, conn)| conn);
            if let Some(victim) = &victim {
                victim.key.store(0, Ordering::Relaxed);
                victim.shedding.store(true, Ordering::Relaxed);
                table.closing += 1;
            }
            victim
        };
        let freed = self.freed.notified();
        match victim {
            Some(victim) => {
                victim.shed.notify_one();
                ConnectionStats::bump(&self.stats.shed);
                let _ = tokio::time::timeout(self.limits.read_timeout, freed).await;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    /// Logs `what`, unless a line was logged less than [`LOG_EVERY`] ago (then it is counted,
    /// and the next line says how many were left out).
    fn note(&self, what: &str) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if log.last.is_some_and(|last| now - last < LOG_EVERY) {
            log.skipped += 1;
            return;
        }
        let open = self.stats.open.load(Ordering::Relaxed);
        if log.skipped > 0 {
            tracing::warn!(
                open,
                limit = self.limits.max_connections,
                "{what} (and {} more refusals or sheds since the last such line)",
                log.skipped
            );
        } else {
            tracing::warn!(open, limit = self.limits.max_connections, "{what}");
        }
        log.last = Some(now);
        log.skipped = 0;
    }
}

#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    skipped: u64,
}

/// One connection, as the slots and the request middleware see it.
#[derive(Debug)]
pub(crate) struct Conn {
    slots: Arc<Slots>,
    /// Its key in the waiting line, 0 when it is not waiting. Changed under the table's lock.
    key: AtomicU64,
    /// Told to close to make room.
    shedding: AtomicBool,
    shed: Notify,
}

impl Conn {
    /// Its request has fully arrived: it is busy, and no longer shed to make room.
    fn request_arrived(&self) {
        self.slots.table().unwait(self);
    }

    /// Its response is on its way: it waits for the next request, or is a WebSocket (and is
    /// never shed).
    fn responded(self: &Arc<Self>, upgraded: bool) {
        let mut table = self.slots.table();
        if upgraded {
            table.unwait(self);
        } else if !self.shedding.load(Ordering::Relaxed) {
            table.wait(self);
        }
    }
}

/// The socket with its slot: the slot is freed when the socket closes, whoever holds it
/// then (hyper's connection, or the WebSocket after an upgrade).
struct Slotted {
    stream: TcpStream,
    _slot: Slot,
}

struct Slot(Arc<Conn>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.slots.free(&self.0);
    }
}

impl AsyncRead for Slotted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The router, with the connection's handle added to every request.
#[derive(Clone)]
struct ConnService {
    router: TowerToHyperService<Router>,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Response;
    type Error = Infallible;
    type Future =
        <TowerToHyperService<Router> as hyper::service::Service<hyper::Request<Incoming>>>::Future;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.conn.clone());
        self.router.call(request)
    }
}

/// The middleware that follows a request through its connection's states: the body gets its
/// deadline, the connection is busy once the body is in, and waits again (or is a WebSocket)
/// once the response is ready. A request that did not come through [`serve`] passes as is.
pub(crate) async fn track(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let Some(conn) = request.extensions().get::<Arc<Conn>>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let expired = Arc::new(AtomicBool::new(false));
    let body = if body.is_end_stream() {
        conn.request_arrived();
        body
    } else {
        Body::new(Deadline {
            inner: body,
            sleep: Box::pin(tokio::time::sleep(limits.read_timeout)),
            conn: Some(conn.clone()),
            expired: expired.clone(),
        })
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if expired.load(Ordering::Relaxed) {
        ConnectionStats::bump(&conn.slots.stats.timed_out);
        response = ApiError::new(
            ApiErrorCode::RequestTimeout,
            format!(
                "the request's body did not arrive within {} (`http.request_read_timeout`)",
                summoner_protocol::duration::format_duration(limits.read_timeout)
            ),
        )
        .into_response();
        // The rest of the body may still be on its way: this connection is done.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    conn.responded(response.status() == StatusCode::SWITCHING_PROTOCOLS);
    response
}

/// A request body with a deadline, which tells its connection when it has fully arrived.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    /// Until the body has fully arrived.
    conn: Option<Arc<Conn>>,
    expired: Arc<AtomicBool>,
}

impl Deadline {
    fn arrived(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.request_arrived();
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.conn.is_none() {
            return Pin::new(&mut this.inner).poll_frame(cx);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.arrived();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if this.inner.is_end_stream() {
                    this.arrived();
                }
                Poll::Ready(Some(frame))
            }
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_ready() {
                    this.expired.store(true, Ordering::Relaxed);
                    this.conn = None;
                    return Poll::Ready(Some(Err(axum::Error::new(
                        "the request body did not arrive in time",
                    ))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_files_for_the_rest() {
        assert_eq!(fit(10_000, None), 10_000);
        assert_eq!(fit(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fit(10_000, Some(1024)), 1024 - 128);
        assert_eq!(fit(100, Some(1024)), 100);
        assert_eq!(fit(10_000, Some(16)), 1);
    }
}

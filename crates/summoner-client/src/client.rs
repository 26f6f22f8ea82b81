//! The async client: a handle on one connection to the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use summoner_protocol::{Acquire, ClientMessage, MAX_FRAME_BYTES, SessionId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::driver::{self, Command, Dial, Driver, Outgoing};
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::request::Request;
use crate::url::ServerUrl;

/// Where a summoner server is when nothing says otherwise: the address `summoner serve`
/// listens on by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// How long a connection attempt (TCP, WebSocket upgrade and `welcome`) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client keeps trying to reconnect and resume after the connection drops: the
/// server's default resume grace, after which there is nothing left to resume.
pub const DEFAULT_RECONNECT_FOR: Duration = Duration::from_secs(30);

/// A connection to a summoner server, shared by every clone of the handle.
///
/// Requests on one client run concurrently: each `acquire` gets its own id, and one task
/// reads the connection and routes every answer to the request or lease it concerns. The
/// connection stays open while any handle, lease or guard of it is alive; it closes (and the
/// server releases everything it holds) on [`Client::close`] or when the last of them is
/// dropped.
///
/// If the connection drops (the server restarts, a network blip), the client reconnects
/// with backoff and resumes its session: leases survive, and requests that were waiting are
/// sent again. If resuming fails for longer than the reconnect window, waiting requests fail
/// with [`Error::ConnectionLost`] and the leases end (see [`Lease::revoked`]). For this the
/// client asks the server for a *resumable* session, whose leases the server keeps for its
/// resume grace when the connection is lost (the server hears nothing more). A process that
/// dies (even by SIGKILL) still frees its leases at once: the kernel closes its socket, and
/// the server takes a closed socket for a client that is gone (unless it is configured with
/// `dropped_connection = "keep"`, as behind a proxy). A client built with
/// [`ClientBuilder::no_reconnect`] asks for an ordinary session, which ends with its
/// connection however that ends.
///
/// ```no_run
/// # async fn demo() -> summoner_client::Result<()> {
/// use summoner_client::{Client, Request};
///
/// let client = Client::connect("http://127.0.0.1:7878", None).await?;
/// let lease = client.acquire(Request::one("ports")).await?;
/// let port = &lease.resources()[0].props["port"];
/// println!("testing on port {port}");
/// lease.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::UnboundedSender<Command>,
    session: watch::Receiver<SessionId>,
    next_id: Arc<AtomicU64>,
    url: ServerUrl,
}

/// Options for [`Client`]; start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    connect_timeout: Duration,
    reconnect_for: Option<Duration>,
}

impl ClientBuilder {
    /// The token to send as `Authorization: Bearer` (needed when the server has tokens).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets the token from an `Option`.
    pub fn token_opt(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// How long one connection attempt may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to keep trying to reconnect and resume after a drop (default 30 s); choose
    /// the server's `resume_grace` if it differs.
    pub fn reconnect_for(mut self, window: Duration) -> Self {
        self.reconnect_for = Some(window);
        self
    }

    /// Never reconnect: a dropped connection fails waiting requests and ends the leases, and
    /// the server, which is not asked for a resumable session, releases them at once.
    pub fn no_reconnect(mut self) -> Self {
        self.reconnect_for = None;
        self
    }

    /// Connects, reads the server's `welcome`, and starts the connection task on the
    /// current tokio runtime.
    pub async fn connect(self) -> Result<Client> {
        let url = ServerUrl::parse(&self.url)?;
        let dial = Dial {
            url: url.ws().to_owned(),
            // A client that reconnects asks for a session that waits for it: the server
            // then keeps its leases for the resume grace when the connection is lost, instead
            // of releasing them at once.
            resumable: self.reconnect_for.is_some(),
            token: self.token,
            connect_timeout: self.connect_timeout,
            reconnect_for: self.reconnect_for,
        };
        let (ws, session) = driver::open(&dial).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (session_tx, session_rx) = watch::channel(session);
        tokio::spawn(Driver::new(dial, rx, session_tx).run(ws));
        Ok(Client {
            tx,
            session: session_rx,
            next_id: Arc::new(AtomicU64::new(1)),
            url,
        })
    }
}

impl Client {
    /// Connects to the server at `url` (`http://host:port`, or the `ws://` URL of its
    /// `/v1/lease` endpoint) with an optional token, using the default options.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Client> {
        Self::builder(url)
            .token_opt(token.map(str::to_owned))
            .connect()
            .await
    }

    /// A builder for a client with non-default options.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_for: Some(DEFAULT_RECONNECT_FOR),
        }
    }

    /// The session id from the server's `welcome` (it changes only if a reconnect could not
    /// resume the old session).
    pub fn session(&self) -> SessionId {
        self.session.borrow().clone()
    }

    /// The server this client talks to.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// Asks for the request's items, all or nothing, and waits until they are granted, the
    /// request's wait runs out ([`Error::Timeout`]), or the server refuses it
    /// ([`Error::Unsatisfiable`], [`Error::UnknownPool`], ...).
    ///
    /// Dropping the returned future withdraws the request (`cancel`); a grant that crosses
    /// the cancel is released.
    pub async fn acquire(&self, request: Request) -> Result<Lease> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        check(id, &request)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Acquire {
                id,
                request: Outgoing {
                    want: request.items,
                    priority: request.priority,
                    note: request.note,
                    wait: request.wait,
                    since: Instant::now(),
                },
                on_queued: request.on_queued,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        let cancel = CancelOnDrop {
            tx: &self.tx,
            id: Some(id),
        };
        let answer = rx.await;
        cancel.disarm();
        match answer {
            Ok(Ok(granted)) => Ok(Lease::new(granted, self.tx.clone())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Closes the connection cleanly and waits until it is closed: the server releases every
    /// lease of the session at once and drops its waiting requests. Other handles of this
    /// client see [`Error::Closed`] from then on.
    pub async fn close(self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Close { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether the connection task has ended (closed, or the connection was lost for good).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Refuses, before sending, what the server would refuse: a request outside the protocol's
/// limits, or a frame so large that the server would close the connection (and the request
/// would be sent again after every reconnect).
fn check(id: u64, request: &Request) -> Result<()> {
    let acquire = Acquire {
        id: id.into(),
        want: request.items.clone(),
        wait_ms: request
            .wait
            .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
        priority: request.priority,
        note: request.note.clone(),
    };
    acquire
        .validate()
        .map_err(|e| Error::from_code(e.code, e.message))?;
    let len = ClientMessage::Acquire(acquire).to_json().len();
    if len > MAX_FRAME_BYTES {
        return Err(Error::TooLarge(format!(
            "the request is {len} bytes as JSON; the server accepts at most {MAX_FRAME_BYTES}"
        )));
    }
    Ok(())
}

/// Withdraws a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    tx: &'a mpsc::UnboundedSender<Command>,
    id: Option<u64>,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let _ = self.tx.send(Command::Cancel { id });
        }
    }
}

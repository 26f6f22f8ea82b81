//! `GET /v1/lease`: one WebSocket connection, one session.
//!
//! Each connection is one task with one `select!` over three things: frames from the peer
//! (parsed here and handed to the broker loop), messages from the loop's outbox (serialized
//! here, so the loop's thread never spends time on JSON), and the ping timer. Nothing else is
//! kept per connection besides tungstenite's buffers (set small: 4 KiB to read, written
//! eagerly), which is what lets 10,000 idle sessions fit in a few hundred megabytes.
//!
//! How a connection ends decides what happens to its leases (see `docs/server.md`):
//!
//! - a close frame from the peer is a deliberate goodbye ([`Hangup::Clean`]), and everything
//!   the session holds is released at once;
//! - EOF or a reset without a close frame ([`Hangup::SocketClosed`]) is what the kernel sends
//!   when the peer's process dies: released at once too, unless `dropped_connection = "keep"`
//!   makes the loop treat it as lost;
//! - a peer silent for two ping intervals, a frame over the size limit, any other failure
//!   ([`Hangup::Lost`]): the peer may be alive behind a broken network, so the leases of a
//!   resumable session wait for the resume grace (any other session's are released at once);
//! - a close decided by the server (shutdown, a `resume` elsewhere, a client too slow to
//!   read): the loop already knows, and nothing is reported.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use summoner_protocol::{ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::auth::Denied;
use crate::error::TOKEN_REQUIRED;
use crate::hub::{Command, Hangup};
use crate::outbox::{Ending, OUTBOX_CAP, Out};
use crate::session_id::new_session_id;
use crate::state::AppState;

/// WebSocket close code for a frame over the size limit ("message too big", RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a peer that stopped answering pings, and for a server shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a client dropped because it did not read its messages.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code for a connection whose session was resumed by another connection
/// (`docs/protocol.md`).
pub const CLOSE_RESUMED: u16 = 4001;
/// Close code for an internal error (the journal cannot be written).
pub const CLOSE_INTERNAL: u16 = 1011;

/// The close frame for a connection the server ends: the code the peer branches on, and a
/// reason for its logs.
fn close_frame(ending: Ending) -> (u16, &'static str) {
    match ending {
        Ending::Resumed => (
            CLOSE_RESUMED,
            "the session was resumed on another connection",
        ),
        Ending::ShuttingDown => (CLOSE_GOING_AWAY, "server shutting down"),
        Ending::JournalFailed => (CLOSE_INTERNAL, "the server cannot write its journal"),
        Ending::TooSlow => (CLOSE_POLICY, "too many unread messages"),
    }
}

/// How long a connection closed for an oversized frame stays open so the peer can read the
/// close frame. Closing a socket with unread input makes the kernel send a reset, which can
/// destroy the close frame before the peer reads it; tungstenite cannot skip the rest of the
/// oversized frame for us, so the connection lingers briefly, unread, instead.
const LINGER: Duration = Duration::from_millis(500);

/// The tungstenite read buffer. The default (128 KiB) times 10,000 idle connections would be
/// over a gigabyte; protocol frames are a few hundred bytes.
const READ_BUFFER: usize = 4 * 1024;

/// The query string of `/v1/lease`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseQuery {
    /// For clients that cannot set an `Authorization` header.
    token: Option<String>,
    /// `true` asks for a session that survives a dropped connection for the resume grace;
    /// otherwise the session ends with its connection, however that ends.
    resumable: Option<String>,
}

/// `true`/`1` or `false`/`0`: strict, because a misspelt value silently meaning "no" would
/// only show when a lease is lost.
fn flag(name: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(format!(
            "query parameter `{name}` must be `true` or `false`, not `{other}`"
        )),
    }
}

/// A refusal before the upgrade: an HTTP error whose JSON body has the form of the
/// protocol's `error` message (`{"type":"error","code":...,"message":...}`), so a client
/// reads it with the same code as any other error.
fn refuse(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    (status, Json(ServerMessage::error(None, code, message))).into_response()
}

/// The handshake: checks the query, the token and the upgrade itself before upgrading, so an
/// unauthorized or malformed request gets a plain HTTP error and never a session.
pub(crate) async fn lease(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LeaseQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("bad query string: {}", rejection.body_text()),
            );
        }
    };
    if let Err(denied) = app.auth.caller(&headers, query.token.as_deref()) {
        // Leasing needs no role beyond a valid token, so the only refusal is 401.
        debug_assert_eq!(denied, Denied::Unauthorized);
        return refuse(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            TOKEN_REQUIRED,
        );
    }
    let resumable = match flag("resumable", query.resumable.as_deref()) {
        Ok(resumable) => resumable,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return refuse(
                rejection.status(),
                ErrorCode::BadRequest,
                format!(
                    "`/v1/lease` is a WebSocket endpoint: {}",
                    rejection.body_text()
                ),
            );
        }
    };
    let frame_bytes = app.limits.frame_bytes;
    upgrade
        .max_message_size(frame_bytes)
        .max_frame_size(frame_bytes)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(socket, app, resumable))
}

/// How a connection ended.
enum End {
    /// The peer ended it, or went silent.
    Peer(Hangup),
    /// The server closed it; the loop knows.
    ByServer,
}

async fn connection(mut socket: WebSocket, app: AppState, resumable: bool) {
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let session = new_session_id();
    let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAP);
    let hub = app.hub.clone();
    if hub
        .send(Command::Connect {
            conn,
            session,
            resumable,
            outbox,
        })
        .await
        .is_err()
    {
        let _ = end(&mut socket, Ending::ShuttingDown).await;
        return;
    }
    let interval = app.ping_interval;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let end = loop {
        tokio::select! {
            // Frames first: a pong that arrived just before the ping timer fired proves the
            // peer alive, and must be seen before the timer's verdict.
            biased;
            frame = socket.recv() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(err)) => {
                        if is_too_big(&err) {
                            tracing::debug!(conn, "frame over {} bytes", app.limits.frame_bytes);
                            let _ = close(&mut socket, CLOSE_TOO_BIG, "frame too large").await;
                            tokio::time::sleep(LINGER).await;
                        }
                        break End::Peer(hangup(&err));
                    }
                    // The stream ends by itself only after a close handshake, which the
                    // `Close` arm below has already seen; anything else is a closed socket.
                    None => break End::Peer(Hangup::SocketClosed),
                };
                last_heard = Instant::now();
                match frame {
                    Message::Text(text) => match ClientMessage::parse_with(text.as_str(), &app.limits) {
                        Ok(msg) => {
                            if hub.send(Command::Message { conn, msg }).await.is_err() {
                                break End::ByServer;
                            }
                        }
                        // Answered here, not by the loop: nothing changed, nothing to store.
                        Err(err) => {
                            if let Err(err) = send(&mut socket, &err.to_message()).await {
                                break End::Peer(hangup(&err));
                            }
                        }
                    },
                    Message::Binary(_) => {
                        let reply = ServerMessage::error(
                            None,
                            ErrorCode::BadRequest,
                            "binary frames are not part of the protocol; send JSON in text frames",
                        );
                        if let Err(err) = send(&mut socket, &reply).await {
                            break End::Peer(hangup(&err));
                        }
                    }
                    // tungstenite answers pings itself; a pong only proves the peer is alive.
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => {
                        // tungstenite has queued the answering close frame; send it, so the
                        // peer sees a completed close handshake.
                        let _ = futures_util::SinkExt::flush(&mut socket).await;
                        break End::Peer(Hangup::Clean);
                    }
                }
            }
            out = inbox.recv() => match out {
                Some(Out::Msg(msg)) => match write_batch(&mut socket, *msg, &mut inbox).await {
                    Ok(Written::All) => {}
                    Ok(Written::Closed) => break End::ByServer,
                    Err(err) => break End::Peer(hangup(&err)),
                },
                Some(Out::Close(ending)) => {
                    let _ = end(&mut socket, ending).await;
                    break End::ByServer;
                }
                // The loop dropped the outbox without a word: at shutdown, or because the
                // writer found the client too slow.
                None => {
                    let ending = if app.shutting_down.load(Ordering::SeqCst) {
                        Ending::ShuttingDown
                    } else {
                        Ending::TooSlow
                    };
                    let _ = end(&mut socket, ending).await;
                    break End::ByServer;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= 2 * interval {
                    tracing::debug!(conn, "no frame for two ping intervals; dropping");
                    let _ = close(&mut socket, CLOSE_GOING_AWAY, "ping timeout").await;
                    break End::Peer(Hangup::Lost);
                }
                if let Err(err) = socket.send(Message::Ping(Default::default())).await {
                    break End::Peer(hangup(&err));
                }
            }
        }
    };
    let hangup = match end {
        End::Peer(hangup) => hangup,
        End::ByServer => return,
    };
    // The loop may be gone (shutdown); then there is no one left to tell.
    let _ = hub.send(Command::Disconnected { conn, hangup }).await;
}

enum Written {
    All,
    /// The loop asked for the connection to be closed, and it was.
    Closed,
}

/// Writes `first` and whatever else is already waiting, then flushes once: a burst of
/// messages (a grant and a position update, say) costs one write to the socket.
async fn write_batch(
    socket: &mut WebSocket,
    first: ServerMessage,
    inbox: &mut mpsc::Receiver<Out>,
) -> Result<Written, axum::Error> {
    use futures_util::SinkExt as _;
    socket.feed(text(&first)).await?;
    let mut fed = 1;
    while fed < 64 {
        match inbox.try_recv() {
            Ok(Out::Msg(msg)) => {
                socket.feed(text(&msg)).await?;
                fed += 1;
            }
            Ok(Out::Close(ending)) => {
                socket.flush().await?;
                end(socket, ending).await?;
                return Ok(Written::Closed);
            }
            Err(_) => break,
        }
    }
    socket.flush().await?;
    Ok(Written::All)
}

fn text(msg: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(msg.to_json()))
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> Result<(), axum::Error> {
    socket.send(text(msg)).await
}

/// Ends a connection for one of the server's reasons.
async fn end(socket: &mut WebSocket, ending: Ending) -> Result<(), axum::Error> {
    let (code, reason) = close_frame(ending);
    close(socket, code, reason).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) -> Result<(), axum::Error> {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await
}

/// How a failed read or write ended the connection: [`Hangup::SocketClosed`] when the peer's
/// socket closed (EOF, or a reset: what the kernel does for a process that died), else
/// [`Hangup::Lost`].
///
/// Only those two say that the other end let go. A timeout (`ETIMEDOUT` after unanswered
/// retransmissions) or an unreachable host is the network failing, not the peer, and a
/// broken or oversized frame comes from a peer that may well be alive: all of them keep a
/// resumable session's leases for the grace.
fn hangup(err: &axum::Error) -> Hangup {
    use std::io::ErrorKind;
    use tungstenite::error::ProtocolError;
    let closed = |kind: ErrorKind| {
        matches!(
            kind,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        )
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(ws) = e.downcast_ref::<tungstenite::Error>() {
            match ws {
                // tungstenite's name for EOF before a close frame.
                tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                    return Hangup::SocketClosed;
                }
                tungstenite::Error::Io(io) if closed(io.kind()) => return Hangup::SocketClosed,
                _ => {}
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && closed(io.kind())
        {
            return Hangup::SocketClosed;
        }
        source = e.source();
    }
    Hangup::Lost
}

/// Whether a read error is tungstenite refusing a frame or message over the size limit.
fn is_too_big(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

//! A connection's outbox: how the broker loop and the journal writer reach a connection's
//! task, and why the server may end a connection.
//!
//! Speaking in the server's own terms ([`Ending`]) keeps WebSocket close codes in `ws.rs`,
//! the one file that writes frames.

use summoner_protocol::ServerMessage;
use tokio::sync::mpsc;

/// How many messages may wait for one connection's writer. A client that stops reading gets
/// this far behind and is then disconnected (uncleanly, so it may resume), rather than make
/// the server buffer for it without bound. Normal traffic is a handful of messages per
/// request, so only a client that does not read at all gets here.
pub(crate) const OUTBOX_CAP: usize = 1024;

/// A connection, numbered in the order they were accepted.
pub(crate) type ConnId = u64;

/// What a connection's writer is asked to do.
#[derive(Debug)]
pub(crate) enum Out {
    /// Send this message. Boxed so that the outbox's slots stay small for idle connections.
    Msg(Box<ServerMessage>),
    /// End the connection; the loop has forgotten it already.
    Close(Ending),
}

/// The sending side of a connection's outbox.
pub(crate) type Outbox = mpsc::Sender<Out>;

/// Why the server ends a connection, as opposed to the peer ending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Another connection resumed this connection's session.
    Resumed,
    /// The server is stopping; leases are kept in the journal for the holders to resume.
    ShuttingDown,
    /// The journal cannot be written, so the server is stopping.
    JournalFailed,
    /// The client fell [`OUTBOX_CAP`] messages behind.
    TooSlow,
}

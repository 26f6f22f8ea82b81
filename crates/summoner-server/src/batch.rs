//! What the broker loop hands the journal writer: one batch's events, and what to do once
//! they are durable.

use summoner_broker::{AdminError, Checkpoint, Event};
use summoner_protocol::ServerMessage;
use tokio::sync::oneshot;

use crate::outbox::{ConnId, Ending, Outbox};

/// Where the answer to an admin change goes.
pub(crate) type AdminReply = oneshot::Sender<Result<(), AdminError>>;

/// Something to do once a batch is durable.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Send a message to a connection.
    Send(ConnId, Outbox, ServerMessage),
    /// End a connection the loop has let go of.
    Close(Outbox, Ending),
}

/// What one pass of the loop produced.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// To store, in order, in one transaction.
    pub events: Vec<Event>,
    /// To do, in order, once they are stored.
    pub deliveries: Vec<Delivery>,
    /// Admin calls to answer once the change is stored.
    pub replies: Vec<(AdminReply, Result<(), AdminError>)>,
    /// The engine's checkpoint after this batch, to store once its events are.
    pub checkpoint: Option<Checkpoint>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.deliveries.is_empty()
            && self.replies.is_empty()
            && self.checkpoint.is_none()
    }
}

//! The journal writer: commits the broker loop's batches, in order, and only then delivers
//! what each batch announced.
//!
//! It runs beside the loop rather than inside it, so that the engine works on batch n + 1
//! while batch n is being committed (on sqlx's SQLite thread, with its fsync). Order is kept
//! by construction: one writer, one FIFO channel, and a batch's messages go out only after its
//! own commit, which comes after every earlier one. The channel holds a single batch, so when
//! the disk is slow the loop waits, and the inputs that arrive meanwhile simply make the next
//! batch bigger: the fsync is shared by more grants, exactly when that matters.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use sqlx::{Connection as _, SqliteConnection};
use summoner_broker::{Checkpoint, Event};
use summoner_protocol::{ErrorCode, ServerMessage};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::batch::{Batch, Delivery};
use crate::clock;
use crate::mark::Keeper;
use crate::metrics::Metrics;
use crate::outbox::{ConnId, Out};
use crate::store::{self, StoreError};

/// The writer's state.
pub(crate) struct Writer {
    pub db: SqliteConnection,
    /// The journal's high-water mark, `summoner.state`.
    pub mark: Keeper,
    /// How long the history keeps an event; older ones are pruned after each checkpoint.
    pub history_retention: std::time::Duration,
    pub batches: mpsc::Receiver<Batch>,
    /// Connections that fell [`crate::outbox::OUTBOX_CAP`] messages behind, for the loop to
    /// drop.
    pub slow: mpsc::UnboundedSender<ConnId>,
    pub metrics: Arc<Mutex<Metrics>>,
}

impl Writer {
    /// Commits and delivers batches until the loop drops its sender, then closes the
    /// database. Stops at the first failed commit, and then withholds every later batch too:
    /// the loop stops the server when it sees that.
    pub async fn run(mut self) -> Result<(), StoreError> {
        while let Some(mut batch) = self.batches.recv().await {
            if let Err(err) = self.commit(&batch.events).await {
                self.withhold(batch);
                // Later batches depend on this one; none of them may be delivered either.
                while let Ok(batch) = self.batches.try_recv() {
                    self.withhold(batch);
                }
                return Err(err);
            }
            let checkpoint = batch.checkpoint.take();
            self.deliver(batch);
            if let Some(checkpoint) = checkpoint {
                self.checkpoint(&checkpoint).await;
            }
        }
        // Copy the WAL into the database file, so that a stopped server leaves a whole
        // database behind. Closing the writer does not: the HTTP API's read-only connections
        // are still open then, and SQLite leaves the checkpoint to the last connection to
        // close, which, being read-only, cannot. With the loop stopped, no reader holds a
        // snapshot for longer than one page of the history takes to read.
        if let Err(err) = clock::hold(store::checkpoint_wal(&mut self.db)).await {
            tracing::warn!("copying the WAL into the database: {err}");
        }
        if let Err(err) = clock::hold(self.db.close()).await {
            tracing::warn!("closing the journal: {err}");
        }
        // Every event is durable: the mark can say exactly how far the journal reaches, so
        // that any loss before the next start is seen, and reserve nothing beyond it.
        if let Err(err) = clock::hold(self.mark.stopped()).await {
            tracing::warn!("{}", crate::error::chain(&err));
        }
        Ok(())
    }

    async fn commit(&mut self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let last = events[events.len() - 1].seq;
        // Before the commit: no event may be durable (and so announced) with a sequence
        // number that the mark does not reserve. One write in a million numbers.
        clock::hold(self.mark.reserve(last)).await?;
        let started = Instant::now();
        clock::hold(store::append_events(&mut self.db, events)).await?;
        let took = started.elapsed();
        self.mark.committed(last);
        self.metrics
            .lock()
            .expect("metrics are never poisoned")
            .committed(events, took);
        Ok(())
    }

    /// Stores a checkpoint and prunes the history behind it. Neither is needed for the
    /// journal to be right (a restart without the newest checkpoint reads more events), so a
    /// failure is logged, not fatal.
    async fn checkpoint(&mut self, checkpoint: &Checkpoint) {
        if let Err(err) = clock::hold(store::write_checkpoint(&mut self.db, checkpoint)).await {
            tracing::warn!("storing a checkpoint: {}", crate::error::chain(&err));
            return;
        }
        // The lazy mark is brought up to date here too, so that however long the server runs
        // with little traffic, what is lost is noticed.
        if let Err(err) = clock::hold(self.mark.write_now()).await {
            tracing::warn!("{}", crate::error::chain(&err));
        }
        let before = SystemTime::now()
            .checked_sub(self.history_retention)
            .map_or(i64::MIN, store::unix_ms);
        match clock::hold(store::prune(&mut self.db, before)).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned the history"),
            Err(err) => tracing::warn!("pruning the history: {}", crate::error::chain(&err)),
        }
    }

    fn deliver(&mut self, batch: Batch) {
        for delivery in batch.deliveries {
            match delivery {
                Delivery::Send(conn, outbox, msg) => {
                    match outbox.try_send(Out::Msg(Box::new(msg))) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            // The loop drops the connection (once, however many messages
                            // bounce) and tells the engine.
                            let _ = self.slow.send(conn);
                        }
                        // The connection's task has ended; its `Disconnected` is on the way.
                        Err(TrySendError::Closed(_)) => {}
                    }
                }
                Delivery::Close(outbox, ending) => {
                    let _ = outbox.try_send(Out::Close(ending));
                }
            }
        }
        for (reply, result) in batch.replies {
            let _ = reply.send(result);
        }
    }

    /// A batch that could not be stored: its recipients are told why instead, and its admin
    /// calls are dropped (their HTTP requests answer that the server is stopping).
    fn withhold(&mut self, batch: Batch) {
        let mut told = std::collections::HashSet::new();
        for delivery in batch.deliveries {
            if let Delivery::Send(conn, outbox, _) = delivery
                && told.insert(conn)
            {
                let _ = outbox.try_send(Out::Msg(Box::new(ServerMessage::error(
                    None,
                    ErrorCode::Internal,
                    "the server could not store this change durably and is stopping; \
                     reconnect and resume your session once it is back",
                ))));
            }
        }
    }
}

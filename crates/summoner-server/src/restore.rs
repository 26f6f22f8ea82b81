//! Rebuilding the engine from the journal when the server starts.
//!
//! Two folds: the broker's [`LeaseFold`] (which leases are still held, and where the sequence
//! numbers continue) starts from the newest checkpoint, if there is one, and reads only the
//! events after it; the server's [`Inventory`] (the config's pools with the run-time changes
//! replayed on top) reads every run-time change, which the journal keeps however old. Then
//! [`Broker::restore`] puts the held leases back into their sessions, orphaned for the resume
//! grace, before any connection is accepted, so a restored lease can never be granted to
//! someone else in the meantime. The events `restore` produces (leases that no longer fit are
//! revoked) are journaled before the server starts listening.

use sqlx::SqliteConnection;
use summoner_broker::{Broker, BrokerConfig, EventKind, LeaseFold};

use crate::clock;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::inventory::Inventory;
use crate::mark::Keeper;
use crate::session_id::new_lease_key;
use crate::store;

/// The engine as the journal in `db` left it, and how many events it read after the newest
/// checkpoint (which the next checkpoint will cover). Its sequence numbers continue at `floor`
/// or above (see `mark.rs`: above every number a previous run may have issued); `mark`
/// reserves the events restoring adds to the journal.
pub(crate) async fn restore(
    db: &mut SqliteConnection,
    config: &ServerConfig,
    floor: u64,
    mark: &mut Keeper,
) -> Result<(Broker, u64), ServerError> {
    let store_error = |source| ServerError::Store {
        dir: config.data_dir.clone(),
        source,
    };
    let checkpoint = clock::hold(store::latest_checkpoint(db))
        .await
        .map_err(store_error)?;
    let checkpoint_seq = checkpoint.as_ref().map_or(0, |c| c.seq);
    let mut leases = checkpoint.map_or_else(LeaseFold::new, LeaseFold::from_checkpoint);
    let mut inventory = Inventory::new(config.pools.clone());
    clock::hold(store::fold_inventory(db, |event| inventory.apply(event)))
        .await
        .map_err(store_error)?;
    let count = clock::hold(store::fold_journal(db, checkpoint_seq, |event| {
        leases.apply(event)
    }))
    .await
    .map_err(store_error)?;
    let (applied, skipped) = (inventory.applied, inventory.skipped);
    let broker_config = BrokerConfig {
        pools: inventory.into_pools(),
        ..config.broker_config()
    };
    let held = leases.held();
    let held_count = held.len();
    let now = tokio::time::Instant::now().into_std();
    let (mut broker, out) = Broker::restore(broker_config, held, leases.next_seq().max(floor), now)
        .map_err(ServerError::Inventory)?;
    // A new key at every start: ids granted before are read from the journal, not
    // recomputed, and sequence numbers never repeat (they continue above the state file's
    // reservation), so no id is ever handed out twice.
    broker.set_lease_key(new_lease_key());
    if let Some(last) = out.events.last() {
        clock::hold(mark.reserve(last.seq))
            .await
            .map_err(store_error)?;
        clock::hold(store::append_events(db, &out.events))
            .await
            .map_err(store_error)?;
        mark.committed(last.seq);
    }
    if count > 0 || checkpoint_seq > 0 {
        // Each lease that is not put back is ended by one event: `revoked` when it no longer
        // fits, `released` when its session could not resume.
        let revoked = out
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Revoked { .. }))
            .count();
        tracing::info!(
            checkpoint = checkpoint_seq,
            events_after_checkpoint = count,
            leases_restored = held_count - out.events.len(),
            leases_not_restorable = revoked,
            leases_of_sessions_that_cannot_resume = out.events.len() - revoked,
            inventory_changes_replayed = applied,
            inventory_changes_skipped = skipped,
            next_seq = broker.next_seq(),
            "restored from the journal"
        );
    }
    Ok((broker, count + out.events.len() as u64))
}

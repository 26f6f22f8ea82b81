//! The small identifiers the other modules share: indices into the inventory, and a waiter's
//! place in the service order.
//!
//! They live in a file of their own so that the inventory, the queue and the leases can name
//! each other's things without importing each other.

use std::cmp::Reverse;

/// Index of a pool in the inventory's pool table.
pub(crate) type PoolId = usize;
/// Index of a resource in the inventory's resource table.
pub(crate) type ResId = usize;

/// A waiter's place in the service order: higher priority first, then earlier arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct QueueKey {
    pub rank: Reverse<i32>,
    pub arrival: u64,
}

impl QueueKey {
    pub fn new(priority: i32, arrival: u64) -> Self {
        Self {
            rank: Reverse(priority),
            arrival,
        }
    }

    /// The request's priority.
    pub fn priority(&self) -> i32 {
        self.rank.0
    }
}

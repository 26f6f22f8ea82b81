//! What an `acquire` asks for.

use std::fmt;
use std::time::Duration;

use summoner_protocol::{Labels, Want};

/// Called with the request's queue position (1 = next in line) each time the server reports
/// one. It runs on the client's connection task, so it must return quickly: print, or send
/// on a channel.
pub type QueuedCallback = Box<dyn FnMut(u64) + Send + 'static>;

/// An acquire: one or more `(pool, count, labels)` items granted all or nothing, how long to
/// wait, a priority and a note.
///
/// ```
/// use std::time::Duration;
/// use summoner_client::Request;
///
/// let request = Request::new()
///     .item("ports", 2)
///     .item_with_labels("boards", 1, [("arch", "arm64")])
///     .wait(Duration::from_secs(60))
///     .note("nightly hardware tests")
///     .on_queued(|position| eprintln!("waiting: position {position} in the queue"));
/// assert_eq!(request.items().len(), 2);
/// ```
#[derive(Default)]
pub struct Request {
    pub(crate) items: Vec<Want>,
    pub(crate) wait: Option<Duration>,
    pub(crate) priority: i32,
    pub(crate) note: Option<String>,
    pub(crate) on_queued: Option<QueuedCallback>,
}

impl Request {
    /// An empty request; add at least one item.
    pub fn new() -> Self {
        Self::default()
    }

    /// A request for one resource of `pool`.
    pub fn one(pool: impl Into<String>) -> Self {
        Self::new().item(pool, 1)
    }

    /// Adds `count` resources of `pool`, any labels.
    pub fn item(self, pool: impl Into<String>, count: u32) -> Self {
        self.want(Want {
            pool: pool.into(),
            count,
            labels: Labels::new(),
        })
    }

    /// Adds `count` resources of `pool` that carry all of `labels`.
    pub fn item_with_labels<K, V>(
        self,
        pool: impl Into<String>,
        count: u32,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.want(Want {
            pool: pool.into(),
            count,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        })
    }

    /// Adds an item as the protocol spells it.
    pub fn want(mut self, want: Want) -> Self {
        self.items.push(want);
        self
    }

    /// Gives up with [`crate::Error::Timeout`] if nothing is granted within `wait`. Without
    /// it the request waits as long as it takes; `Duration::ZERO` means "only if free now".
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Sets the wait from an `Option`, for callers that pass a flag through.
    pub fn wait_opt(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    /// Higher is served first (default 0). Within a priority, arrival order.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Free text shown with the request and the lease (a job URL, a user name).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Called with the queue position whenever the server reports one.
    pub fn on_queued(mut self, callback: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_queued = Some(Box::new(callback));
        self
    }

    /// The items asked for.
    pub fn items(&self) -> &[Want] {
        &self.items
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("items", &self.items)
            .field("wait", &self.wait)
            .field("priority", &self.priority)
            .field("note", &self.note)
            .field("on_queued", &self.on_queued.is_some())
            .finish()
    }
}

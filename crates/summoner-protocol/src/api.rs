//! The bodies of the server's HTTP JSON API: what `GET /v1/pools`, `/v1/pools/{pool}`,
//! `/v1/leases`, `/v1/queue`, `/v1/events` and `/healthz` answer, the resource that the admin
//! endpoints answer with, and the `{code, message}` of every error.
//!
//! The server serializes these and `summoner status` deserializes them, so the two cannot
//! drift apart. `docs/server.md` lists the endpoints. Session ids appear only as
//! [`ShortSessionId`]s: a whole id is a capability, told only to the client that owns it.
//!
//! Deserializing is lenient in the same way as for [`crate::ServerMessage`]: fields a reader
//! does not know are ignored, so an older reader still understands a newer server.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::client::Want;
use crate::code::ErrorCode;
use crate::id::{LeaseId, RequestId, ShortSessionId};
use crate::prop::{Labels, Props};

/// `GET /healthz`: the broker loop answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always [`HealthStatus::Ok`]; a server that is stopping answers 503 with an
    /// [`ApiError`] instead.
    pub status: HealthStatus,
    /// The sequence number the next event will get: how far the history has come.
    pub next_seq: u64,
}

/// The `status` of [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The broker loop answered.
    Ok,
}

/// `GET /v1/pools`: every pool, in config order (pools added at run time last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pools {
    /// The pools.
    pub pools: Vec<Pool>,
}

/// A pool and its resources: one entry of [`Pools`], and the answer of
/// `GET /v1/pools/{pool}` and `POST /v1/pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pool {
    /// The pool's name, as `acquire` items name it.
    pub name: String,
    /// The longest a lease on this pool may be held before it is revoked, written as in the
    /// config (`10m`, `1h30m`: see `duration`); absent when leases may be held for ever.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10m"))]
    #[serde(
        default,
        with = "crate::duration::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_hold: Option<std::time::Duration>,
    /// Its resources, in config order.
    pub resources: Vec<Resource>,
    /// How many waiting requests want something from it.
    pub waiting: u64,
}

/// A resource and who holds it: one entry of [`Pool::resources`], and the answer of
/// `POST /v1/pools/{pool}/resources` and `PATCH /v1/pools/{pool}/resources/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    /// Its name, unique within its pool.
    pub name: String,
    /// What selectors match.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    /// What a holder is handed (a port, a serial device, an address).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, crate::PropValue>))]
    pub props: Props,
    /// How many leases may hold it at once; 1 = exclusive.
    pub capacity: u32,
    /// Whether it may be granted; a disabled resource keeps its holders.
    pub enabled: bool,
    /// The leases holding it, oldest first.
    pub holders: Vec<Holder>,
}

/// One holder of a [`Resource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Holder {
    /// The lease.
    pub lease: LeaseId,
    /// The session that holds it, shortened.
    pub session: ShortSessionId,
}

/// `GET /v1/leases?after=C&limit=M`: a page of the leases, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Leases {
    /// The leases granted after the cursor `after`, at most `limit` of them (see [`Page`]).
    pub leases: Vec<Lease>,
    /// How many leases are held in all, on every page.
    #[serde(default)]
    pub total: u64,
    /// The `after` that asks for the next page; absent when this page ends the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A lease, with its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    /// Its id.
    pub lease: LeaseId,
    /// The session that holds it, shortened.
    pub session: ShortSessionId,
    /// The id of the `acquire` it answers, as the client sent it.
    pub id: RequestId,
    /// Its resources, in the order of the request's items.
    pub resources: Vec<ResourceRef>,
    /// The request's note (`null` when it had none).
    pub note: Option<String>,
    /// Whether its session has a connection; false while the holder may still `resume`.
    pub connected: bool,
    /// How long it has been held, in milliseconds (since it was granted, or restored after
    /// a restart).
    pub held_ms: u64,
    /// In how many milliseconds its pool's max hold time revokes it; absent when never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_in_ms: Option<u64>,
}

/// A resource by pool and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceRef {
    /// The pool.
    pub pool: String,
    /// The resource's name within the pool.
    pub name: String,
}

/// `GET /v1/queue?after=C&limit=M`: a page of the waiting requests, in the order they will
/// be served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Queue {
    /// The waiting requests behind the cursor `after`, at most `limit` of them (see [`Page`]).
    pub queue: Vec<Waiter>,
    /// How many requests wait in all, on every page.
    #[serde(default)]
    pub total: u64,
    /// The `after` that asks for the next page; absent when this page ends the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// How the listings `GET /v1/leases`, `/v1/queue` and `/v1/events` are paged: the query
/// parameter `limit` (1 to [`Page::MAX_LIMIT`], [`Page::DEFAULT_LIMIT`] when absent) caps
/// the items of one answer.
///
/// A page of leases or waiters also ends once its items hold about [`Page::MAX_BYTES`] of
/// text (it always holds at least one), since a request id may be as long as a frame. Its
/// `next` is an opaque cursor, to be passed back as `after`; it names the page's last item,
/// not a position, so a walk through a listing that changes meanwhile neither skips nor
/// repeats an item that stays in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page;

impl Page {
    /// The `limit` when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The largest `limit` accepted; a larger one is refused with `bad_request`.
    pub const MAX_LIMIT: u32 = 1000;
    /// About how much text (request ids, notes, names and labels) a page of leases or
    /// waiters holds at most, in bytes.
    pub const MAX_BYTES: usize = 1024 * 1024;
}

/// A waiting request, with its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waiter {
    /// The session that asked, shortened.
    pub session: ShortSessionId,
    /// The id of its `acquire`, as the client sent it.
    pub id: RequestId,
    /// What it wants.
    pub want: Vec<Want>,
    /// Its priority; higher is served first.
    pub priority: i32,
    /// Its note (`null` when it has none).
    pub note: Option<String>,
    /// Its position now, 1 for the next in line (which may be newer than what it was last
    /// told).
    pub position: u64,
    /// How long it has waited, in milliseconds.
    pub waited_ms: u64,
    /// In how many milliseconds its `wait_ms` runs out; absent when it waits for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_ms: Option<u64>,
}

/// `GET /v1/events?after=N&limit=M`: a page of the audit history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Events {
    /// The events with a sequence number above `after`, at most `limit` of them.
    pub events: Vec<Event>,
    /// The `after` that asks for the next page: the last event's `seq`, or the `after` asked
    /// for when the page is empty.
    pub next_after: u64,
}

/// One event of the audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// When it was stored, in Unix milliseconds.
    pub at: i64,
    /// Its sequence number: strictly increasing, never reused, also across restarts.
    pub seq: u64,
    /// What happened; its `type` and fields sit beside `at` and `seq`.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A connection opened.
    SessionConnected {
        /// Its session.
        session: ShortSessionId,
        /// Whether it survives an unclean disconnect for the resume grace.
        resumable: bool,
    },
    /// A connection closed.
    SessionDisconnected {
        /// The session.
        session: ShortSessionId,
        /// Whether the close was clean (an unclean one keeps a resumable session's leases
        /// for the resume grace).
        clean: bool,
    },
    /// A new connection took over a session (and its leases).
    SessionResumed {
        /// The session that continues.
        session: ShortSessionId,
        /// The session the new connection was welcomed with, which it gave up.
        connection: ShortSessionId,
        /// The leases it continues to hold.
        leases: Vec<LeaseId>,
    },
    /// A dropped session's grace period ended; its leases are released (see the `released`
    /// events that follow).
    SessionExpired {
        /// The session.
        session: ShortSessionId,
    },
    /// A request had to wait.
    RequestQueued {
        /// Whose.
        session: ShortSessionId,
        /// Its id.
        id: RequestId,
        /// What it wants.
        want: Vec<Want>,
        /// Its priority.
        priority: i32,
        /// Its position when it joined.
        position: u64,
    },
    /// A waiting request's `wait_ms` ran out.
    RequestTimedOut {
        /// Whose.
        session: ShortSessionId,
        /// Its id.
        id: RequestId,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },
    /// A waiting request was withdrawn.
    RequestCancelled {
        /// Whose.
        session: ShortSessionId,
        /// Its id.
        id: RequestId,
        /// Why.
        cause: CancelCause,
    },
    /// A waiting request became impossible (its pool or resources were removed) and was
    /// answered with an error.
    RequestFailed {
        /// Whose.
        session: ShortSessionId,
        /// Its id.
        id: RequestId,
        /// The error code sent.
        code: ErrorCode,
        /// The error message sent.
        message: String,
    },
    /// A lease was granted.
    Granted {
        /// The new lease.
        lease: LeaseId,
        /// Its holder.
        session: ShortSessionId,
        /// The request it answers.
        id: RequestId,
        /// The resources, in the order of the request's items.
        resources: Vec<ResourceRef>,
        /// How long the request waited, in milliseconds; 0 if granted at once.
        waited_ms: u64,
        /// The request's note; absent when it had none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A lease ended at the holder's side.
    Released {
        /// The lease.
        lease: LeaseId,
        /// Its holder.
        session: ShortSessionId,
        /// Why.
        cause: ReleaseCause,
        /// How long it was held, in milliseconds.
        held_ms: u64,
    },
    /// A lease was taken away.
    Revoked {
        /// The lease.
        lease: LeaseId,
        /// Its holder.
        session: ShortSessionId,
        /// Why, in a few words.
        cause: RevokeCause,
        /// Why, as told to the holder.
        reason: String,
        /// How long it was held, in milliseconds.
        held_ms: u64,
    },
    /// A resource was added at run time.
    ResourceAdded {
        /// Its pool.
        pool: String,
        /// The resource, as it was added.
        resource: ResourceSpec,
    },
    /// A resource's labels, props, capacity or enabled flag changed at run time.
    ResourceChanged {
        /// Its pool.
        pool: String,
        /// The resource as it is now.
        resource: ResourceSpec,
    },
    /// A resource was removed at run time (its leases were revoked first).
    ResourceRemoved {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A resource was disabled: not granted again until enabled.
    ResourceDisabled {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A resource was enabled again.
    ResourceEnabled {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A pool was added at run time.
    PoolAdded {
        /// The pool, as it was added.
        pool: PoolSpec,
    },
    /// A pool was removed at run time (its leases were revoked and its waiters answered
    /// first).
    PoolRemoved {
        /// Its name.
        pool: String,
    },
}

/// Why a lease ended at the holder's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReleaseCause {
    /// The holder sent `release`.
    Client,
    /// The holder's connection closed: cleanly, or by its client's socket closing (the
    /// process died), or in any way for a session that is not resumable.
    Disconnect,
    /// The holder's connection dropped and it did not resume within the grace period.
    GraceExpired,
    /// The server restarted while the holder was connected, and the holder's session was not
    /// resumable.
    Restart,
}

/// Why a lease was taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RevokeCause {
    /// An admin force-released it.
    Admin,
    /// It was held longer than its pool's `max_hold`.
    MaxHold,
    /// One of its resources was removed.
    ResourceRemoved,
    /// One of its pools was removed.
    PoolRemoved,
    /// It could not be restored after a restart (its resource is gone or full).
    NotRestorable,
}

/// Why a waiting request left the queue without a grant (other than a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// The client sent `cancel`.
    Client,
    /// The client's connection closed or dropped.
    Disconnect,
}

/// A pool as it was added at run time: the body of `POST /v1/pools`, in the form the config
/// file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolSpec {
    /// The pool's name.
    pub name: String,
    /// Resources listed one by one; absent when there are none.
    #[serde(default, rename = "resource", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceSpec>,
    /// Resources generated from a numeric range; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeSpec>,
    /// The longest a lease may be held (`10m`); absent when for ever.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10m"))]
    #[serde(
        default,
        with = "crate::duration::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_hold: Option<std::time::Duration>,
}

/// A resource as it was added or changed at run time, in the form the config file writes it:
/// also the body of `POST /v1/pools/{pool}/resources`, where `capacity` and `enabled` may be
/// left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceSpec {
    /// Its name, unique within its pool.
    pub name: String,
    /// What selectors match; absent when empty.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    /// What a holder is handed; absent when empty.
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, crate::PropValue>))]
    pub props: Props,
    /// How many leases may hold it at once; 1 when absent.
    #[serde(default = "one")]
    pub capacity: u32,
    /// Whether it may be granted; true when absent.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Resources named `from`..=`to`, each with the prop `prop` set to its number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeSpec {
    /// The first number, inclusive.
    pub from: u64,
    /// The last number, inclusive.
    pub to: u64,
    /// The prop that carries the number; `port` when absent.
    #[serde(default = "port")]
    pub prop: String,
    /// Labels of every resource of the range; absent when empty.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    /// Capacity of every resource of the range; 1 when absent.
    #[serde(default = "one")]
    pub capacity: u32,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn port() -> String {
    "port".to_owned()
}

/// The body of `PATCH /v1/pools/{pool}/resources/{name}`: the fields to change; absent ones
/// stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    /// The new labels, replacing the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub labels: Option<Labels>,
    /// The new props, replacing the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, crate::PropValue>>))]
    pub props: Option<Props>,
    /// The new capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Enabled or disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `POST /v1/leases/{lease}/revoke`, which may also be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// Added to what the holder is told (`released by admin: REASON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of every error answer: `{code, message}`, with an HTTP status that matches the
/// code (see [`ApiErrorCode::status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What went wrong, for programs to branch on.
    pub code: ApiErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

/// The `code` of an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// No valid token (401).
    Unauthorized,
    /// The token's role may not do this (403).
    Forbidden,
    /// A body or query that does not parse, unknown fields included (400).
    BadRequest,
    /// No such pool (404).
    UnknownPool,
    /// No such resource in the pool (404).
    UnknownResource,
    /// No such lease (404).
    UnknownLease,
    /// No such endpoint (404).
    NotFound,
    /// The endpoint exists but not with this method (405).
    MethodNotAllowed,
    /// The body is larger than the server reads (413).
    PayloadTooLarge,
    /// The body's `Content-Type` is not one the endpoint takes (415): a request that changes
    /// things must send `application/json` or no body, so a browser's cross-site form or
    /// `text/plain` POST cannot act (refused at the HTTP edge).
    UnsupportedMediaType,
    /// A pool or resource of that name exists already (409).
    AlreadyExists,
    /// The change would leave the inventory invalid, e.g. a capacity of 0 (422).
    Invalid,
    /// A name, label or prop over its `[limits]`; the message names the limit (413).
    TooLarge,
    /// The server is stopping (503).
    Unavailable,
    /// Something failed inside the server (500).
    Internal,

    // Refusals at the HTTP edge, before any handler runs (see docs/server.md, "The HTTP
    // edge"); each names the rule that refused.
    /// The `Host` header names neither this server nor an `http.allowed_hosts` entry (421):
    /// what a DNS-rebinding page sends.
    HostNotAllowed,
    /// A request that changes things, or a WebSocket upgrade, from a page of another origin
    /// than this server's or an `http.allowed_origins` entry (403).
    OriginNotAllowed,
    /// The request's body did not arrive within `http.request_read_timeout` (408).
    RequestTimeout,
    /// Every connection slot (`http.max_connections`) is taken by a WebSocket or a request
    /// in progress (503).
    TooManyConnections,
}

impl ApiErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::UnknownPool | Self::UnknownResource | Self::UnknownLease | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::AlreadyExists => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Invalid => 422,
            Self::TooLarge => 413,
            Self::Internal => 500,
            Self::Unavailable => 503,
            Self::HostNotAllowed => 421,
            Self::OriginNotAllowed => 403,
            Self::RequestTimeout => 408,
            Self::TooManyConnections => 503,
        }
    }
}

impl ApiErrorCode {
    /// The code that goes with an HTTP error status: the inverse of [`ApiErrorCode::status`]
    /// where one code has the status (404 is `not_found`), else `bad_request` for another
    /// 4xx and `internal` for a 5xx; `None` below 400.
    pub fn for_status(status: u16) -> Option<Self> {
        Some(match status {
            0..=399 => return None,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::AlreadyExists,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            421 => Self::HostNotAllowed,
            422 => Self::Invalid,
            503 => Self::Unavailable,
            400..=499 => Self::BadRequest,
            _ => Self::Internal,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Schemas for the types the API's bodies share with the WebSocket protocol, whose serde
/// forms are written by hand (so `ToSchema` cannot be derived from them).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::__dev::ComposeSchema;
    use utoipa::ToSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

    use crate::id::{LeaseId, RequestId, ShortSessionId};
    use crate::prop::PropValue;

    // utoipa builds every schema through `ComposeSchema` (which its derive implements, and
    // from which `PartialSchema` follows), so these implement it too.

    fn string(description: &str, example: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .examples([example])
            .into()
    }

    impl ComposeSchema for LeaseId {
        fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
            string(
                "A lease's id, as `granted` told it.",
                "lease-6f1c0b9e2d8a4f37a5c2e19b7d30c8e4",
            )
        }
    }
    impl ToSchema for LeaseId {}

    impl ComposeSchema for ShortSessionId {
        fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
            string(
                "The first 12 hex digits of a session id (a whole id is a capability).",
                "9f2c4e1a7b3d",
            )
        }
    }
    impl ToSchema for ShortSessionId {}

    impl ComposeSchema for RequestId {
        fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .description(Some(
                    "The id a client gave its `acquire`, a string or a number, as it was sent.",
                ))
                .into()
        }
    }
    impl ToSchema for RequestId {}

    impl ComposeSchema for PropValue {
        fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .item(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("A prop's value: a JSON scalar."))
                .into()
        }
    }
    impl ToSchema for PropValue {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_back_as_it_was_written() {
        let text = r#"{"at":1795966674977,"seq":7,"type":"session_resumed","session":"bff041636ec8","connection":"98b2538e8e0c","leases":["lease-2"]}"#;
        let event: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event.seq, 7);
        assert!(matches!(event.kind, EventKind::SessionResumed { .. }));
        assert_eq!(serde_json::to_string(&event).unwrap(), text);
    }

    #[test]
    fn error_codes_are_snake_case_and_carry_a_status() {
        let err: ApiError =
            serde_json::from_str(r#"{"code":"unknown_pool","message":"unknown pool `x`"}"#)
                .unwrap();
        assert_eq!(err.code, ApiErrorCode::UnknownPool);
        assert_eq!(err.code.status(), 404);
        assert_eq!(err.to_string(), "unknown pool `x`");
    }
}

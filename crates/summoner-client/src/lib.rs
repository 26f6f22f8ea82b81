//! Rust client for summoner's broker: lease unique test resources (ports, lab boards,
//! accounts) over a WebSocket, so that a crashed test never leaks one.
//!
//! - [`Client`] is async (tokio); [`blocking::Client`] is the same for code without a runtime.
//! - [`Client::acquire`] asks for one or more `(pool, count, labels)` items, all or nothing,
//!   and returns a [`Lease`] with the granted [`Resource`]s. Many acquires may run at once on
//!   one client.
//! - [`Lease::release`] gives it back; a [`LeaseGuard`] releases on drop; [`Lease::revoked`]
//!   tells when the server took it away.
//! - The connection reconnects and resumes its session after a drop, so leases survive a
//!   restart of the server or a network blip.
//! - [`lease_env`] turns a lease into the `SUMMONER_<POOL>_<I>_<PROP>` variables that
//!   `summoner lease` and `summoner up` export.
//!
//! `docs/client.md` describes the API and the variables; `docs/protocol.md` the wire protocol.

pub mod blocking;
mod client;
mod driver;
mod env;
mod error;
mod lease;
mod request;
mod url;

pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECONNECT_FOR, DEFAULT_SERVER,
};
pub use env::{env_key, lease_env};
pub use error::{Error, Result};
pub use lease::{Lease, LeaseGuard, Resource};
pub use request::{QueuedCallback, Request};
pub use summoner_protocol::{ErrorCode, Labels, LeaseId, PropValue, Props, SessionId, Want};
pub use url::{LEASE_PATH, ServerUrl};

//! Wire types of summoner's broker protocol v1.
//!
//! The protocol is one JSON object per WebSocket text frame, each with a `type` field in
//! snake_case. Clients send [`ClientMessage`]s (`acquire`, `release`, `cancel`, `resume`,
//! `ping`); the server answers with [`ServerMessage`]s (`welcome`, `queued`, `granted`,
//! `released`, `revoked`, `resumed`, `cancelled`, `error`, `pong`). `docs/protocol.md` is the
//! full reference; every example in it is produced by these types and checked by the tests.
//!
//! This crate is deliberately small and free of I/O so that the server, the Rust client and
//! any tool that wants to speak the protocol can share it without pulling in a runtime.
//!
//! Parsing is strict on the server side (unknown fields in a client message are an error, so
//! a misspelt `wait_ms` does not silently mean "wait forever") and lenient on the client side
//! (a newer server may add fields to its messages).
//!
//! The bodies of the server's HTTP JSON API are in [`api`], shared the same way by the server
//! that writes them and `summoner status` that reads them.

pub mod api;
mod client;
mod code;
pub mod duration;
mod error;
mod id;
mod limits;
mod prop;
mod server;
mod text;

pub use client::{Acquire, Cancel, ClientMessage, Ping, Release, Resume, Want, repeated_key};
pub use code::ErrorCode;
pub use error::ProtocolError;
pub use id::{LeaseId, RequestId, SessionId, ShortSessionId};
pub use limits::{
    BadLimit, LimitExceeded, Limits, MAX_COUNT, MAX_FRAME_BYTES, MAX_ITEMS, MAX_NOTE_CHARS,
};
pub use prop::{Labels, PropValue, Props};
pub use server::{
    Cancelled, ErrorReply, Grant, GrantedResource, Pong, Queued, Released, Resumed, Revoked,
    ServerMessage, Welcome,
};
pub use text::prefix as shorten;

/// The protocol version announced in `welcome {protocol}`.
///
/// It changes only for incompatible changes; new optional fields in server messages are not
/// incompatible, because clients ignore fields they do not know.
pub const PROTOCOL_VERSION: u32 = 1;

//! Size limits that keep one client from making the server do unbounded work.
//!
//! They are generous for real test suites (a job rarely wants more than a handful of
//! resources) and small enough that a single frame can neither exhaust memory nor make the
//! matching of one request expensive.

/// Largest text frame the server accepts, in bytes. A larger frame closes the connection with
/// WebSocket close code 1009 ("message too big").
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Most items (`want` entries) in one `acquire`. 64 also lets the engine describe which items
/// a resource matches as a single `u64` bit set.
pub const MAX_ITEMS: usize = 64;

/// Largest `count` of one `want` item.
pub const MAX_COUNT: u32 = 10_000;

/// Longest `note` of an `acquire`, in characters (Unicode scalar values, not bytes).
pub const MAX_NOTE_CHARS: usize = 256;

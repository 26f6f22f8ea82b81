//! Session ids: 128 random bits from the operating system, in hex.
//!
//! A session id is a capability: whoever presents it in `resume` takes over the session and
//! its leases. So it must be unguessable (not a counter, not a time), and the HTTP API shows
//! only a prefix of it (see [`short`]).

use summoner_protocol::SessionId;

/// A new session id: 32 lowercase hex digits.
pub(crate) fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something a server can work around; without it no
    // session would be safe to hand out.
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let mut hex = String::with_capacity(32);
    for b in bytes {
        hex.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).expect("a nibble"));
    }
    SessionId(hex)
}

/// How many characters of a session id the HTTP API shows: 48 bits, enough to tell sessions
/// apart in a dashboard, while the 80 bits left unknown keep the id impossible to guess.
pub(crate) const SHORT_LEN: usize = 12;

/// The public form of a session id: its first [`SHORT_LEN`] characters.
pub(crate) fn short(session: &str) -> &str {
    match session.char_indices().nth(SHORT_LEN) {
        Some((i, _)) => &session[..i],
        None => session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_differ() {
        let a = new_session_id();
        let b = new_session_id();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(short(a.as_str()).len(), SHORT_LEN);
        assert_eq!(short("abc"), "abc");
    }
}

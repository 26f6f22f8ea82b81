//! Session ids: 128 random bits from the operating system, in hex.
//!
//! A session id is a capability: whoever presents it in `resume` takes over the session and
//! its leases. So it must be unguessable (not a counter, not a time), and the HTTP API shows
//! only a prefix of it (a [`summoner_protocol::ShortSessionId`]).

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
    }
}

//! Session ids: 128 random bits from the operating system, in hex; and the key of lease ids.
//!
//! A session id is a capability: whoever presents it in `resume` takes over the session and
//! its leases. So it must be unguessable (not a counter, not a time), and the HTTP API shows
//! only a prefix of it (a [`summoner_protocol::ShortSessionId`]). Lease ids are named by the
//! engine, which has no randomness of its own; it is given a [`LeaseKey`] of 128 random bits
//! at every start, so that they cannot be guessed either.

use summoner_broker::LeaseKey;
use summoner_protocol::SessionId;

/// 16 bytes from the operating system's random source.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something a server can work around; without it no
    // session would be safe to hand out.
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
}

/// A new key for the engine's lease ids, never stored.
pub(crate) fn new_lease_key() -> LeaseKey {
    LeaseKey::new(random_bytes())
}

/// A new session id: 32 lowercase hex digits.
pub(crate) fn new_session_id() -> SessionId {
    let bytes = random_bytes();
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

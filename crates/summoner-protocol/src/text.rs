//! How messages quote text that came from a client.

/// The first 32 characters of a text, which is how messages show a name or a key that may be
/// too long to show whole.
pub fn prefix(text: &str) -> &str {
    const SHOWN: usize = 32;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

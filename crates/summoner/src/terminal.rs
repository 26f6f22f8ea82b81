//! Text on its way to a terminal.
//!
//! Strings that came from a server or its clients (pool and resource names, notes, revoke
//! reasons, error messages) are shown through [`shown`], so none of them can move the
//! cursor, start an escape sequence, set the window title or fake a line of output.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` as it may safely reach a terminal: every control character (C0, DEL, C1) and every
/// bidirectional override is escaped, `\n` as `\n`, `\r` as `\r`, `\t` as `\t`, the others as
/// `\u{1b}`. Strings from clients are shown through this, so none of them can move the
/// cursor, start an escape sequence or reorder what follows.
pub fn shown(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Each line of `text` through [`shown`]: for summoner's own multi-line messages (an error
/// with a service's last lines), whose line breaks are summoner's, while whatever they quote
/// is not.
pub fn shown_lines(text: &str) -> Cow<'_, str> {
    if text
        .split('\n')
        .all(|line| matches!(shown(line), Cow::Borrowed(_)))
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(shown).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("plain"), "plain");
        assert_eq!(shown("a\x1b]0;title\x07b"), "a\\u{1b}]0;title\\u{7}b");
        assert_eq!(shown("fake\r\nrow"), "fake\\r\\nrow");
        assert_eq!(shown("\u{202e}rtl"), "\\u{202e}rtl");
    }

    #[test]
    fn line_breaks_of_a_message_are_kept_and_the_rest_escaped() {
        assert_eq!(shown_lines("one\ntwo"), "one\ntwo");
        assert_eq!(shown_lines("one\x1b[2J\ntwo\r"), "one\\u{1b}[2J\ntwo\\r");
    }
}

//! Fuzzing `ClientMessage::parse` with proptest: whatever a client sends, the parser answers
//! with a message or an error code, never a panic.
//!
//! The inputs are arbitrary bytes, arbitrary text, JSON-like text, and valid frames mutated
//! byte by byte or field by field. The number of cases comes from `SUMMONER_FUZZ_CASES`
//! (or proptest's own `PROPTEST_CASES`); the default keeps `cargo test` fast, and
//! `docs/fuzzing.md` gives the command for a long run. The agreement of the typed fast path
//! with the `Value` reference parser is checked by the unit test next to them in
//! `src/client.rs`, which reads the same variable.

use proptest::prelude::*;
use serde_json::Value;
use summoner_protocol::{ClientMessage, ErrorCode, MAX_FRAME_BYTES, RequestId};

/// The number of cases: `SUMMONER_FUZZ_CASES`, else `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    ["SUMMONER_FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(default)
}

/// Frames a real client sends, to mutate.
const FRAMES: &[&str] = &[
    r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}]}"#,
    r#"{"id":"job-1","type":"acquire","want":[{"pool":"boards","count":2,"labels":{"arch":"arm64"}}],"wait_ms":5000,"priority":-1,"note":"ci é"}"#,
    r#"{"type":"release","lease":"l-1"}"#,
    r#"{"type":"cancel","id":3}"#,
    r#"{"type":"resume","session":"s-0123456789abcdef"}"#,
    r#"{"type":"ping"}"#,
];

/// Fragments that matter to JSON or to the protocol, for mutations to splice in.
const FRAGMENTS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\\",
    "\\u",
    "\\ud800",
    "\\u0000",
    "null",
    "true",
    "0",
    "-0",
    "1e999",
    "-1",
    "4294967296",
    "18446744073709551616",
    "0.5",
    "\"type\"",
    "\"id\"",
    "\"want\"",
    "\"count\"",
    "\"labels\"",
    "\"acquire\"",
    "\"ping\"",
    "é",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        fragment: usize,
    },
    /// Repeats a span: duplicate keys, nested arrays, long strings.
    Repeat {
        at: usize,
        len: usize,
        times: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Edit::Insert { at, fragment }),
        (any::<usize>(), 1..16usize, 1..64usize).prop_map(|(at, len, times)| Edit::Repeat {
            at,
            len,
            times
        }),
    ]
}

/// The nearest char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edit: &Edit) -> String {
    match *edit {
        Edit::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            format!("{}{}", &text[..start], &text[end..])
        }
        Edit::Insert { at, fragment } => {
            let at = boundary(text, at);
            format!("{}{}{}", &text[..at], FRAGMENTS[fragment], &text[at..])
        }
        Edit::Repeat { at, len, times } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            let span = &text[start..end];
            format!("{}{}{}", &text[..end], span.repeat(times), &text[end..])
        }
    }
}

/// Parses `text` and checks the outcome: a message that survives a round trip, or an error
/// with a client-error code that a reply can carry.
fn check(text: &str) -> Result<(), TestCaseError> {
    match ClientMessage::parse(text) {
        Ok(msg) => {
            prop_assert!(msg.validate().is_ok());
            let json = serde_json::to_string(&msg).unwrap();
            prop_assert_eq!(ClientMessage::parse(&json), Ok(msg), "{}", text);
        }
        Err(err) => {
            prop_assert!(
                matches!(err.code, ErrorCode::BadRequest | ErrorCode::TooLarge),
                "{:?}",
                err
            );
            prop_assert!(!err.message.is_empty());
            if text.len() > MAX_FRAME_BYTES {
                prop_assert_eq!(err.code, ErrorCode::TooLarge);
            }
            // An echoed id is the frame's own.
            if let Some(id) = &err.id {
                let value: Value = serde_json::from_str(text).unwrap();
                let frame_id = value.get("id").and_then(RequestId::from_value);
                prop_assert_eq!(frame_id.as_ref(), Some(id));
            }
            // The reply is valid JSON.
            serde_json::to_string(&err.to_message()).unwrap();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // A WebSocket text frame is UTF-8; anything else is closed by the transport, so the
        // parser sees the valid part of any byte string.
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[{}\[\]",:0-9a-z_ .\\-]{0,200}"#) {
        check(&text)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        frame in 0..FRAMES.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text = FRAMES[frame].to_owned();
        for edit in &edits {
            text = apply(&text, edit);
        }
        check(&text)?;
    }
}

/// Crashes and wrong answers the fuzzer found, kept as named tests.
mod regressions {
    use super::*;

    /// Found by `mutated_frames_never_panic`: serde_json's default float parsing is not
    /// correctly rounded, so an id too large for an integer came back from the echo as a
    /// different number. Numeric ids are now whole numbers a 64-bit integer holds, echoed
    /// exactly; these are refused with `bad_request`, and one that fits comes back as sent.
    #[test]
    fn a_numeric_id_is_echoed_exactly_or_refused() {
        for id in [
            "118446744073709551616",
            "1.1844674407370955e20",
            "0.30000000000000004",
        ] {
            let text = format!(r#"{{"type":"cancel","id":{id}}}"#);
            let err = ClientMessage::parse(&text).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}: {err:?}");
        }
        let text = r#"{"type":"cancel","id":18446744073709551615}"#;
        let msg = ClientMessage::parse(text).unwrap();
        let echoed = serde_json::to_string(&msg).unwrap();
        assert!(echoed.contains(r#""id":18446744073709551615"#), "{echoed}");
    }

    #[test]
    fn the_frames_to_mutate_are_valid() {
        for frame in FRAMES {
            assert!(ClientMessage::parse(frame).is_ok(), "{frame}");
        }
    }
}

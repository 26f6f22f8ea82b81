//! Parse errors: each one should tell a client developer what to fix.

use summoner_protocol::{ClientMessage, ErrorCode, MAX_FRAME_BYTES, RequestId, ServerMessage};

fn err(text: &str) -> (ErrorCode, String, Option<RequestId>) {
    let e = ClientMessage::parse(text).expect_err("should not parse");
    (e.code, e.message, e.id)
}

fn bad(text: &str) -> String {
    let (code, message, _) = err(text);
    assert_eq!(code, ErrorCode::BadRequest, "{message}");
    message
}

#[test]
fn not_json() {
    assert_eq!(bad("hello"), "not JSON: expected value at line 1 column 1");
    assert_eq!(
        bad("{\"type\":"),
        "not JSON: EOF while parsing a value at line 1 column 8"
    );
}

#[test]
fn not_an_object() {
    assert_eq!(
        bad("[1,2]"),
        "expected a JSON object with a `type` field, got an array"
    );
    assert_eq!(
        bad("\"acquire\""),
        "expected a JSON object with a `type` field, got a string"
    );
}

#[test]
fn missing_or_wrong_type() {
    assert_eq!(
        bad("{}"),
        "missing field `type`; expected one of acquire, release, cancel, resume, ping"
    );
    assert_eq!(
        bad(r#"{"type":3}"#),
        "field `type` must be a string (one of acquire, release, cancel, resume, ping), got a number"
    );
}

#[test]
fn unknown_type_carries_the_id() {
    let (code, message, id) = err(r#"{"type":"aquire","id":"job-1"}"#);
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(
        message,
        "unknown message type `aquire`; expected one of acquire, release, cancel, resume, ping"
    );
    assert_eq!(id, Some(RequestId::from("job-1")));
}

#[test]
fn missing_field() {
    let (_, message, id) = err(r#"{"type":"acquire","id":7}"#);
    assert_eq!(message, "missing field `want` in `acquire`");
    assert_eq!(id, Some(RequestId::from(7)));
    assert_eq!(
        bad(r#"{"type":"release"}"#),
        "missing field `lease` in `release`"
    );
    assert_eq!(
        bad(r#"{"type":"cancel"}"#),
        "missing field `id` in `cancel`"
    );
    assert_eq!(
        bad(r#"{"type":"resume"}"#),
        "missing field `session` in `resume`"
    );
}

#[test]
fn unknown_field_is_refused_so_typos_do_not_pass_silently() {
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}],"waitms":10}"#),
        "unknown field `waitms`, expected one of `id`, `want`, `wait_ms`, `priority`, `note` in \
         `acquire`"
    );
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[{"pool":"ports","label":{}}]}"#),
        "unknown field `label`, expected one of `pool`, `count`, `labels` in `acquire`"
    );
    assert_eq!(
        bad(r#"{"type":"ping","x":1}"#),
        "unknown field `x`, there are no fields in `ping`"
    );
}

#[test]
fn wrong_field_types() {
    assert_eq!(
        bad(r#"{"type":"acquire","id":true,"want":[{"pool":"ports"}]}"#),
        "invalid type: boolean `true`, expected a string or a number in `acquire`"
    );
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[{"pool":"ports","count":"2"}]}"#),
        "invalid type: string \"2\", expected u32 in `acquire`"
    );
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[{"pool":"ports","labels":{"a":1}}]}"#),
        "invalid type: integer `1`, expected a string in `acquire`"
    );
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}],"wait_ms":-1}"#),
        "invalid value: integer `-1`, expected u64 in `acquire`"
    );
}

#[test]
fn an_id_of_the_wrong_type_is_not_echoed() {
    let (_, _, id) = err(r#"{"type":"nope","id":null}"#);
    assert_eq!(id, None);
}

#[test]
fn semantic_rules() {
    assert_eq!(
        bad(r#"{"type":"acquire","id":1,"want":[]}"#),
        "`want` in `acquire` must list at least one item"
    );
    let (code, message, id) = err(r#"{"type":"acquire","id":"x","want":[{"pool":"p","count":0}]}"#);
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(
        message,
        "`count` of item 1 (pool `p`) in `acquire` must be at least 1"
    );
    assert_eq!(id, Some(RequestId::from("x")));
}

#[test]
fn limits_are_too_large() {
    let (code, message, id) =
        err(r#"{"type":"acquire","id":1,"want":[{"pool":"p"},{"pool":"q","count":10001}]}"#);
    assert_eq!(code, ErrorCode::TooLarge);
    assert_eq!(
        message,
        "`count` of item 2 (pool `q`) in `acquire` is 10001; at most 10000 is allowed \
         (`limits.count_per_item`)"
    );
    assert_eq!(id, Some(RequestId::from(1)));

    let items = vec![r#"{"pool":"p"}"#; 65].join(",");
    let (code, message, _) = err(&format!(r#"{{"type":"acquire","id":1,"want":[{items}]}}"#));
    assert_eq!(code, ErrorCode::TooLarge);
    assert_eq!(
        message,
        "`want` in `acquire` has 65 items; at most 64 are allowed (`limits.items_per_request`)"
    );

    let note = "é".repeat(257);
    let (code, message, _) = err(&format!(
        r#"{{"type":"acquire","id":1,"want":[{{"pool":"p"}}],"note":"{note}"}}"#
    ));
    assert_eq!(code, ErrorCode::TooLarge);
    assert_eq!(
        message,
        "`note` in `acquire` has 257 characters; at most 256 are allowed (`limits.note_chars`)"
    );
    // 256 two-byte characters are fine: the limit counts characters, not bytes.
    let note = "é".repeat(256);
    ClientMessage::parse(&format!(
        r#"{{"type":"acquire","id":1,"want":[{{"pool":"p"}}],"note":"{note}"}}"#
    ))
    .unwrap();

    let big = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    let (code, message, _) = err(&big);
    assert_eq!(code, ErrorCode::TooLarge);
    assert_eq!(
        message,
        format!(
            "frame of {} bytes exceeds the limit of 65536 bytes (`limits.frame_bytes`)",
            big.len()
        )
    );
}

#[test]
fn defaults() {
    let msg =
        ClientMessage::parse(r#"{"type":"acquire","id":"a","want":[{"pool":"ports"}]}"#).unwrap();
    let ClientMessage::Acquire(acquire) = msg else {
        panic!("not an acquire")
    };
    assert_eq!(acquire.want[0].count, 1);
    assert!(acquire.want[0].labels.is_empty());
    assert_eq!(acquire.wait_ms, None);
    assert_eq!(acquire.priority, 0);
    assert_eq!(acquire.note, None);
    // `null` is how many languages write "absent".
    let msg = ClientMessage::parse(
        r#"{"type":"acquire","id":"a","want":[{"pool":"ports"}],"wait_ms":null,"note":null}"#,
    )
    .unwrap();
    let ClientMessage::Acquire(acquire) = msg else {
        panic!("not an acquire")
    };
    assert_eq!(acquire.wait_ms, None);
}

#[test]
fn ids_are_echoed_as_given() {
    // Numbers that are not plain integers are refused (see `tests/strict.rs`): a float could
    // not give back the text that was sent.
    for id in [r#""7""#, "7", "-3", r#""""#, r#""7.5""#] {
        let text = format!(r#"{{"type":"cancel","id":{id}}}"#);
        let msg = ClientMessage::parse(&text).unwrap();
        assert_eq!(msg.to_json(), text);
    }
}

#[test]
fn the_error_reply_echoes_the_id() {
    let e = ClientMessage::parse(r#"{"type":"acquire","id":"job-9"}"#).unwrap_err();
    assert_eq!(
        e.to_message().to_json(),
        r#"{"type":"error","id":"job-9","code":"bad_request","message":"missing field `want` in `acquire`"}"#
    );
    let e = ClientMessage::parse("nope").unwrap_err();
    assert_eq!(
        e.to_message().to_json(),
        r#"{"type":"error","code":"bad_request","message":"not JSON: expected ident at line 1 column 2"}"#
    );
}

#[test]
fn clients_ignore_unknown_fields_from_the_server() {
    let msg =
        ServerMessage::parse(r#"{"type":"released","lease":"lease-1","at":"2025-01-01"}"#).unwrap();
    assert_eq!(
        msg,
        ServerMessage::Released(summoner_protocol::Released {
            lease: "lease-1".into()
        })
    );
}

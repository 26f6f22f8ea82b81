//! The strict protocol: ids come back byte for byte or are refused, a key named twice is
//! refused, and every limit is checked with its name in the message.

use summoner_protocol::{ClientMessage, ErrorCode, Limits, RequestId};

fn refused(text: &str) -> (ErrorCode, String, Option<RequestId>) {
    let e = ClientMessage::parse(text).expect_err("should be refused");
    (e.code, e.message, e.id)
}

#[test]
fn integer_ids_are_echoed_byte_for_byte() {
    for id in [
        "0",
        "-1",
        "18446744073709551615",
        "-9223372036854775808",
        r#""1e3""#,
        r#""12345678901234567890123""#,
    ] {
        let text = format!(r#"{{"type":"acquire","id":{id},"want":[{{"pool":"p","count":1}}]}}"#);
        let msg = ClientMessage::parse(&text).unwrap();
        assert_eq!(msg.to_json(), text);
    }
}

#[test]
fn numbers_that_would_not_come_back_as_sent_are_refused() {
    for id in [
        "1e3",
        "1E3",
        "7.5",
        "1.0",
        "-0",
        "18446744073709551616",
        "-9223372036854775809",
        "12345678901234567890123",
    ] {
        let text = format!(r#"{{"type":"acquire","id":{id},"want":[{{"pool":"p"}}]}}"#);
        let (code, message, echoed) = refused(&text);
        assert_eq!(code, ErrorCode::BadRequest, "{id}");
        assert!(
            message.starts_with("a numeric request id must be an integer"),
            "{id}: {message}"
        );
        // Not echoed: what would come back is not what was sent.
        assert_eq!(echoed, None, "{id}");
        let cancel = format!(r#"{{"type":"cancel","id":{id}}}"#);
        assert_eq!(refused(&cancel).0, ErrorCode::BadRequest, "{id}");
    }
}

#[test]
fn a_key_named_twice_is_refused_wherever_it_is() {
    let (code, message, id) = refused(r#"{"type":"acquire","id":1,"id":2,"want":[{"pool":"p"}]}"#);
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(
        message,
        "key `id` appears twice in one object; every key may appear only once"
    );
    // Which of the two ids would be a guess.
    assert_eq!(id, None);

    for text in [
        r#"{"type":"acquire","type":"acquire","id":"a","want":[{"pool":"p"}]}"#,
        r#"{"type":"acquire","id":"a","want":[{"pool":"p","pool":"q"}]}"#,
        r#"{"type":"acquire","id":"a","want":[{"pool":"p","labels":{"x":"1","x":"2"}}]}"#,
        r#"{"type":"acquire","id":"a","want":[{"pool":"p"}],"note":"n","note":"m"}"#,
        r#"{"type":"release","lease":"l","lease":"m"}"#,
    ] {
        let (code, message, id) = refused(text);
        assert_eq!(code, ErrorCode::BadRequest, "{text}");
        assert!(message.contains("appears twice"), "{text}: {message}");
        // The id itself was given once, so the error names the request.
        if text.contains(r#""id":"a""#) {
            assert_eq!(id, Some(RequestId::from("a")), "{text}");
        }
    }
}

#[test]
fn every_limit_is_named_when_exceeded() {
    let limits = Limits {
        id_chars: 4,
        name_chars: 3,
        label_count: 1,
        label_chars: 2,
        items_per_request: 1,
        count_per_item: 2,
        note_chars: 1,
        frame_bytes: 200,
        ..Limits::default()
    };
    let cases = [
        (
            r#"{"type":"acquire","id":"abcde","want":[{"pool":"p"}]}"#,
            "id_chars",
        ),
        (r#"{"type":"cancel","id":"abcde"}"#, "id_chars"),
        (r#"{"type":"release","lease":"abcde"}"#, "id_chars"),
        (r#"{"type":"resume","session":"abcde"}"#, "id_chars"),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"pool"}]}"#,
            "name_chars",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p","labels":{"a":"1","b":"2"}}]}"#,
            "label_count",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p","labels":{"abc":"1"}}]}"#,
            "label_chars",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p","labels":{"a":"123"}}]}"#,
            "label_chars",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p"},{"pool":"q"}]}"#,
            "items_per_request",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p","count":3}]}"#,
            "count_per_item",
        ),
        (
            r#"{"type":"acquire","id":1,"want":[{"pool":"p"}],"note":"ab"}"#,
            "note_chars",
        ),
    ];
    for (text, limit) in cases {
        let e = ClientMessage::parse_with(text, &limits).expect_err(text);
        assert_eq!(e.code, ErrorCode::TooLarge, "{text}");
        assert!(
            e.message.ends_with(&format!("(`limits.{limit}`)")),
            "{text}: {}",
            e.message
        );
        // The same frame is fine under the default limits.
        ClientMessage::parse(text).unwrap();
    }
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(200));
    let e = ClientMessage::parse_with(&big, &limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::TooLarge);
    assert!(
        e.message.ends_with("(`limits.frame_bytes`)"),
        "{}",
        e.message
    );
}

#[test]
fn an_id_over_its_limit_is_not_echoed() {
    let limits = Limits {
        id_chars: 4,
        ..Limits::default()
    };
    let e = ClientMessage::parse_with(r#"{"type":"acquire","id":"abcde","want":[]}"#, &limits)
        .unwrap_err();
    assert_eq!(e.id, None);
    let e = ClientMessage::parse_with(r#"{"type":"acquire","id":"abcd","want":[]}"#, &limits)
        .unwrap_err();
    assert_eq!(e.id, Some(RequestId::from("abcd")));
}

//! Every message survives JSON and back unchanged: what the server writes, a client reads, and
//! the other way round.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use summoner_protocol::*;

fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<u64>().prop_map(RequestId::from),
        any::<i64>().prop_map(|n| RequestId::Number(n.into())),
        ".{0,12}".prop_map(RequestId::String),
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    btree_map("[a-z]{1,6}", ".{0,8}", 0..4)
}

fn prop_value() -> impl Strategy<Value = PropValue> {
    prop_oneof![
        any::<bool>().prop_map(PropValue::Bool),
        any::<i64>().prop_map(PropValue::from),
        ".{0,10}".prop_map(PropValue::String),
    ]
}

fn props() -> impl Strategy<Value = Props> {
    btree_map("[a-z_]{1,6}", prop_value(), 0..4)
}

fn want() -> impl Strategy<Value = Want> {
    ("[a-z0-9-]{1,10}", 1..=MAX_COUNT, labels()).prop_map(|(pool, count, labels)| Want {
        pool,
        count,
        labels,
    })
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (
            request_id(),
            vec(want(), 1..5),
            option::of(any::<u64>()),
            any::<i32>(),
            option::of(".{0,40}")
        )
            .prop_map(
                |(id, want, wait_ms, priority, note)| ClientMessage::Acquire(Acquire {
                    id,
                    want,
                    wait_ms,
                    priority,
                    note,
                })
            ),
        ".{0,10}".prop_map(|l| ClientMessage::Release(Release { lease: l.into() })),
        request_id().prop_map(|id| ClientMessage::Cancel(Cancel { id })),
        ".{0,10}".prop_map(|s| ClientMessage::Resume(Resume { session: s.into() })),
        Just(ClientMessage::Ping(Ping {})),
    ]
}

fn grant() -> impl Strategy<Value = Grant> {
    let resource =
        ("[a-z]{1,6}", ".{1,8}", labels(), props()).prop_map(|(pool, name, labels, props)| {
            GrantedResource {
                pool,
                name,
                labels,
                props,
            }
        });
    (request_id(), ".{1,10}", vec(resource, 1..4)).prop_map(|(id, lease, resources)| Grant {
        id,
        lease: lease.into(),
        resources,
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (".{1,10}", proptest::option::of(0..100_000u64)).prop_map(|(s, grace)| {
            ServerMessage::Welcome(Welcome {
                session: s.into(),
                protocol: PROTOCOL_VERSION,
                resume_grace_ms: grace,
            })
        }),
        (request_id(), 1..100_000u64)
            .prop_map(|(id, position)| ServerMessage::Queued(Queued { id, position })),
        grant().prop_map(ServerMessage::Granted),
        ".{1,10}".prop_map(|l| ServerMessage::Released(Released { lease: l.into() })),
        (".{1,10}", ".{0,30}").prop_map(|(l, reason)| ServerMessage::Revoked(Revoked {
            lease: l.into(),
            reason
        })),
        (".{1,10}", vec(grant(), 0..3)).prop_map(|(s, leases)| ServerMessage::Resumed(Resumed {
            session: s.into(),
            leases
        })),
        request_id().prop_map(|id| ServerMessage::Cancelled(Cancelled { id })),
        (option::of(request_id()), error_code(), ".{0,30}")
            .prop_map(|(id, code, message)| ServerMessage::error(id, code, message)),
        Just(ServerMessage::Pong(Pong {})),
    ]
}

proptest! {
    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let text = msg.to_json();
        prop_assert_eq!(ClientMessage::parse(&text).unwrap(), msg);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let text = msg.to_json();
        prop_assert_eq!(ServerMessage::parse(&text).unwrap(), msg);
    }

    /// Whatever arrives, the parser answers with a message or an error, never a panic; and an
    /// error is always one the server can send back.
    #[test]
    fn parse_never_panics(text in ".{0,200}") {
        if let Err(e) = ClientMessage::parse(&text) {
            prop_assert!(matches!(e.code, ErrorCode::BadRequest | ErrorCode::TooLarge));
            prop_assert!(!e.message.is_empty());
        }
    }

    /// Frames that are JSON objects but wrong in some field still get their `id` echoed.
    #[test]
    fn errors_keep_the_id(id in request_id(), count in prop_oneof![Just(0u32), MAX_COUNT + 1..u32::MAX]) {
        let text = serde_json::json!({
            "type": "acquire", "id": id, "want": [{"pool": "p", "count": count}]
        }).to_string();
        let e = ClientMessage::parse(&text).unwrap_err();
        prop_assert_eq!(e.id, Some(id));
    }
}

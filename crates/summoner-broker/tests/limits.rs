//! The engine's own bounds: how many requests may wait, per session and in all; and lease
//! ids that cannot be guessed once the server has given a key.

mod common;

use std::collections::HashSet;

use common::Harness;
use serde_json::json;
use summoner_broker::{Broker, BrokerConfig, Input, LeaseKey, fold_events};
use summoner_protocol::{ErrorCode, ServerMessage};

/// One port, and small waiting limits.
fn one_port(per_session: usize, total: usize) -> Harness {
    Harness::new(json!({
        "pool": [{"name": "ports", "range": {"from": 20000, "to": 20000}}],
        "limits": {"waiting_per_session": per_session, "waiting_total": total}
    }))
}

#[test]
fn a_session_may_have_only_so_many_requests_waiting() {
    let mut h = one_port(2, 100);
    h.connect("a");
    h.connect("b");
    assert!(h.acquire("a", 1, json!([{"pool": "ports"}]))[0].starts_with("a: granted 1"));
    assert_eq!(
        h.acquire("a", 2, json!([{"pool": "ports"}])),
        ["a: queued 2 at 1"]
    );
    assert_eq!(
        h.acquire("a", 3, json!([{"pool": "ports"}])),
        ["a: queued 3 at 2"]
    );
    assert_eq!(
        h.acquire("a", 4, json!([{"pool": "ports"}])),
        [
            "a: error 4 too_large: cannot wait: this session has 2 waiting requests; at most 2 \
             are allowed (`limits.waiting_per_session`)"
        ]
    );
    // Nothing was recorded for the refusal, and other sessions still queue.
    assert_eq!(h.broker.stats().waiting, 2);
    assert_eq!(
        h.acquire("b", 1, json!([{"pool": "ports"}])),
        ["b: queued 1 at 3"]
    );
    // A request that is granted at once never waits, so the bound does not apply to it; and
    // once a waiter is served there is room again.
    h.send("a", json!({"type": "cancel", "id": 3}));
    assert_eq!(
        h.acquire("a", 5, json!([{"pool": "ports"}])),
        ["a: queued 5 at 3"]
    );
}

#[test]
fn the_whole_queue_is_bounded_too() {
    let mut h = one_port(10, 2);
    for s in ["a", "b", "c", "d"] {
        h.connect(s);
    }
    assert!(h.acquire("a", 1, json!([{"pool": "ports"}]))[0].starts_with("a: granted"));
    assert_eq!(
        h.acquire("b", 1, json!([{"pool": "ports"}])),
        ["b: queued 1 at 1"]
    );
    assert_eq!(
        h.acquire("c", 1, json!([{"pool": "ports"}])),
        ["c: queued 1 at 2"]
    );
    let refused = h.send_raw(
        "d",
        json!({"type": "acquire", "id": 1, "want": [{"pool": "ports"}]}),
    );
    let ServerMessage::Error(e) = &refused.messages[0].1 else {
        panic!("{:?}", refused.messages)
    };
    assert_eq!(e.code, ErrorCode::TooLarge);
    assert!(
        e.message.ends_with("(`limits.waiting_total`)"),
        "{}",
        e.message
    );
    assert!(refused.events.is_empty());
}

#[test]
fn the_engine_checks_the_configured_limits_again() {
    let mut h = Harness::new(json!({
        "pool": [{"name": "ports", "range": {"from": 20000, "to": 20001}}],
        "limits": {"note_chars": 3}
    }));
    h.connect("a");
    let lines = h.send(
        "a",
        json!({"type": "acquire", "id": 1, "want": [{"pool": "ports"}], "note": "four"}),
    );
    assert_eq!(
        lines,
        [
            "a: error 1 too_large: `note` in `acquire` has 4 characters; at most 3 are allowed \
             (`limits.note_chars`)"
        ]
    );
}

fn keyed(key: u8) -> Broker {
    let config: BrokerConfig = serde_json::from_value(json!({
        "pool": [{"name": "ports", "range": {"from": 20000, "to": 20099}}]
    }))
    .unwrap();
    let mut broker = Broker::new(config).unwrap();
    broker.set_lease_key(LeaseKey::new([key; 16]));
    broker
}

#[test]
fn keyed_lease_ids_cannot_be_enumerated() {
    let mut h = Harness::with(keyed(7));
    h.connect("a");
    let mut ids = HashSet::new();
    for id in 0..50 {
        let out = h.send_raw(
            "a",
            json!({"type": "acquire", "id": id, "want": [{"pool": "ports"}]}),
        );
        let ServerMessage::Granted(grant) = &out.messages[0].1 else {
            panic!("{:?}", out.messages)
        };
        let lease = grant.lease.as_str();
        // `lease-` and 128 bits in hex.
        assert_eq!(lease.len(), 6 + 32, "{lease}");
        assert!(lease[6..].chars().all(|c| c.is_ascii_hexdigit()), "{lease}");
        assert!(ids.insert(lease.to_owned()), "{lease} twice");
    }
    // An admin loop over the ids an attacker could think of finds nothing to revoke.
    for n in 0..1_000 {
        for guess in [
            format!("lease-{n}"),
            format!("{n}"),
            format!("lease-{n:032x}"),
        ] {
            let (result, _) = h.admin(json!({"op": "revoke", "lease": guess}));
            assert!(result.is_err(), "{guess} was revoked");
        }
    }
    assert_eq!(h.broker.stats().leases, 50);
}

#[test]
fn a_new_key_never_names_a_lease_like_an_earlier_one() {
    // The same sequence numbers under two keys (two runs of a server) give different ids, and
    // one key gives the same ids again (the engine stays deterministic).
    let grant = |broker: Broker| {
        let mut h = Harness::with(broker);
        h.connect("a");
        (0..20)
            .map(|id| {
                let out = h.send_raw(
                    "a",
                    json!({"type": "acquire", "id": id, "want": [{"pool": "ports"}]}),
                );
                match &out.messages[0].1 {
                    ServerMessage::Granted(g) => g.lease.to_string(),
                    other => panic!("{other:?}"),
                }
            })
            .collect::<Vec<_>>()
    };
    let first = grant(keyed(1));
    let again = grant(keyed(1));
    let other = grant(keyed(2));
    assert_eq!(first, again);
    let first: HashSet<_> = first.into_iter().collect();
    assert!(other.iter().all(|id| !first.contains(id)));
}

#[test]
fn restored_leases_keep_the_ids_they_were_granted_with() {
    let mut h = Harness::with(keyed(3));
    h.connect("a");
    let out = h.send_raw(
        "a",
        json!({"type": "acquire", "id": 1, "want": [{"pool": "ports"}]}),
    );
    let ServerMessage::Granted(grant) = &out.messages[0].1 else {
        panic!()
    };
    let (held, next_seq) = fold_events(&h.events);
    let (mut broker, _) = Broker::restore(h.broker.config(), held, next_seq, h.now).unwrap();
    broker.set_lease_key(LeaseKey::new([4; 16]));
    let leases: Vec<String> = broker
        .leases()
        .iter()
        .map(|l| l.lease.to_string())
        .collect();
    assert_eq!(leases, [grant.lease.to_string()]);
    // The restored session can still release it by that id.
    let mut h = Harness::with(broker);
    h.connect("b");
    let out = h.broker.handle(
        h.now,
        Input::Message {
            session: "b".into(),
            msg: summoner_protocol::ClientMessage::parse(r#"{"type":"resume","session":"a"}"#)
                .unwrap(),
        },
    );
    assert!(matches!(out.messages[0].1, ServerMessage::Resumed(_)));
    let released = h.release("a", grant.lease.as_str());
    assert_eq!(released, [format!("a: released {}", grant.lease)]);
}

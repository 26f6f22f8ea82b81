//! Example-based tests: one readable scenario per rule of the engine.

mod common;

use common::{Harness, lines};
use serde_json::json;
use summoner_broker::{
    Broker, BrokerConfig, CancelCause, Disconnect, EventKind, Input, ReleaseCause, RevokeCause,
    fold_events,
};
use summoner_protocol::{ErrorCode, PropValue, ServerMessage};

/// Three boards with labels and three ports from a range.
fn lab() -> Harness {
    Harness::new(json!({
        "pool": [
            {"name": "boards", "resource": [
                {"name": "rpi-1", "labels": {"arch": "arm64", "lab": "b2"},
                 "props": {"serial": "/dev/ttyUSB0", "ip": "10.0.0.5"}},
                {"name": "rpi-2", "labels": {"arch": "arm64", "lab": "b3"}},
                {"name": "nuc-1", "labels": {"arch": "x86"}}
            ]},
            {"name": "ports", "range": {"from": 20000, "to": 20002, "prop": "port"}}
        ]
    }))
}

fn ports(n: u64) -> Harness {
    Harness::new(json!({
        "pool": [{"name": "ports", "range": {"from": 20000, "to": 20000 + n - 1}}]
    }))
}

#[test]
fn connecting_is_welcomed_and_recorded() {
    let mut h = lab();
    assert_eq!(h.connect("a"), ["a: welcome a v1"]);
    assert_eq!(h.event_types(), ["session_connected"]);
    assert_eq!(h.send("a", json!({"type": "ping"})), ["a: pong"]);
}

#[test]
fn acquire_is_granted_at_once_and_released() {
    let mut h = lab();
    h.connect("a");
    let out = h.send_raw(
        "a",
        json!({"type": "acquire", "id": "job-1", "want": [{"pool": "ports"}]}),
    );
    let ServerMessage::Granted(grant) = &out.messages[0].1 else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(grant.lease.as_str(), "lease-2");
    assert_eq!(grant.resources[0].name, "20000");
    // A port is a number, not a string.
    assert_eq!(grant.resources[0].props["port"], PropValue::from(20000u64));
    assert_eq!(
        serde_json::to_value(&out.events[0]).unwrap(),
        json!({"seq": 2, "type": "granted", "lease": "lease-2", "session": "a", "id": "job-1",
               "resources": [{"pool": "ports", "name": "20000"}], "waited_ms": 0})
    );
    assert_eq!(h.release("a", "lease-2"), ["a: released lease-2"]);
    assert_eq!(
        h.event_types(),
        ["session_connected", "granted", "released"]
    );
    assert_eq!(h.broker.stats().slots_free, 6);
}

#[test]
fn labels_select_and_props_are_handed_over() {
    let mut h = lab();
    h.connect("a");
    let out = h.send_raw(
        "a",
        json!({"type": "acquire", "id": 1,
               "want": [{"pool": "boards", "labels": {"lab": "b2"}}]}),
    );
    let ServerMessage::Granted(grant) = &out.messages[0].1 else {
        panic!()
    };
    assert_eq!(grant.resources[0].name, "rpi-1");
    assert_eq!(grant.resources[0].props["ip"], PropValue::from("10.0.0.5"));
    assert_eq!(grant.resources[0].labels["arch"], "arm64");
    assert_eq!(
        h.acquire(
            "a",
            2,
            json!([{"pool": "boards", "labels": {"arch": "x86"}}])
        ),
        ["a: granted 2 lease-3 boards/nuc-1"]
    );
}

#[test]
fn all_or_nothing_across_pools() {
    let mut h = lab();
    h.connect("a");
    h.connect("b");
    assert_eq!(
        h.acquire(
            "a",
            1,
            json!([{"pool": "boards", "count": 2, "labels": {"arch": "arm64"}}])
        ),
        ["a: granted 1 lease-3 boards/rpi-1 boards/rpi-2"]
    );
    // b needs an arm board *and* two ports: the ports are free, but it takes nothing until it
    // can take everything, so nobody can deadlock holding half of what they need.
    assert_eq!(
        h.acquire(
            "b",
            1,
            json!([{"pool": "ports", "count": 2}, {"pool": "boards", "labels": {"arch": "arm64"}}])
        ),
        ["b: queued 1 at 1"]
    );
    assert_eq!(
        h.broker
            .pool("ports")
            .unwrap()
            .resources
            .iter()
            .filter(|r| r.holders.is_empty())
            .count(),
        3
    );
    assert_eq!(
        h.release("a", "lease-3"),
        [
            "a: released lease-3",
            "b: granted 1 lease-6 ports/20000 ports/20001 boards/rpi-1"
        ]
    );
}

#[test]
fn items_of_one_request_get_distinct_resources_even_when_greedy_would_fail() {
    let mut h = lab();
    h.connect("a");
    // The first item could take the x86 board or an arm board; the second can only use an
    // arm board with lab b2. A greedy choice in item order would take rpi-1 for the first.
    assert_eq!(
        h.acquire(
            "a",
            1,
            json!([{"pool": "boards", "count": 2}, {"pool": "boards", "labels": {"lab": "b2"}}])
        ),
        ["a: granted 1 lease-2 boards/rpi-2 boards/nuc-1 boards/rpi-1"]
    );
}

#[test]
fn refused_at_once_unknown_pool_unsatisfiable_duplicate() {
    let mut h = lab();
    h.connect("a");
    assert_eq!(
        h.acquire("a", 1, json!([{"pool": "gpus"}])),
        ["a: error 1 unknown_pool: unknown pool `gpus`; known pools: boards, ports"]
    );
    assert_eq!(
        h.acquire("a", 2, json!([{"pool": "ports", "count": 4}])),
        ["a: error 2 unsatisfiable: pool `ports` has 3 resources; 4 wanted"]
    );
    assert_eq!(
        h.acquire(
            "a",
            3,
            json!([{"pool": "boards", "count": 2, "labels": {"arch": "x86"}}])
        ),
        ["a: error 3 unsatisfiable: pool `boards` has 1 resource with labels {arch=x86}; 2 wanted"]
    );
    assert_eq!(
        h.acquire(
            "a",
            4,
            json!([{"pool": "boards", "count": 3}, {"pool": "boards"}])
        ),
        [
            "a: error 4 unsatisfiable: pool `boards` cannot give 4 distinct resources matching the \
          2 items of this request that name it"
        ]
    );
    // Nothing was queued or held by any of that.
    assert_eq!(h.broker.stats().waiting + h.broker.stats().leases, 0);

    h.acquire("a", 5, json!([{"pool": "ports", "count": 3}]));
    assert_eq!(
        h.acquire("a", 6, json!([{"pool": "ports"}])),
        ["a: queued 6 at 1"]
    );
    assert_eq!(
        h.acquire("a", 6, json!([{"pool": "ports"}])),
        [
            "a: error 6 duplicate_id: a request with id 6 is already waiting on this session; use \
          a new id or cancel it first"
        ]
    );
    // Ids only need to be unique among waiting requests: 5 was granted, so it may be reused.
    assert_eq!(
        h.acquire("a", 5, json!([{"pool": "ports"}])),
        ["a: queued 5 at 2"]
    );
}

#[test]
fn disabled_resources_count_as_existing_for_satisfiability() {
    let mut h = lab();
    h.connect("a");
    let (result, _) = h.admin(json!({"op": "disable", "pool": "ports", "resource": "20002"}));
    assert_eq!(result, Ok(()));
    // Three exist though only two can be granted now: the request waits for the third.
    assert_eq!(
        h.acquire("a", 1, json!([{"pool": "ports", "count": 3}])),
        ["a: queued 1 at 1"]
    );
    let (result, out) = h.admin(json!({"op": "enable", "pool": "ports", "resource": "20002"}));
    assert_eq!(result, Ok(()));
    assert_eq!(
        out,
        ["a: granted 1 lease-5 ports/20000 ports/20001 ports/20002"]
    );
}

#[test]
fn wait_ms_zero_and_timeouts() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.send(
            "b",
            json!({"type": "acquire", "id": 1, "want": [{"pool": "ports"}], "wait_ms": 0})
        ),
        ["b: error 1 timeout: not available now, and `wait_ms` is 0"]
    );
    assert_eq!(
        h.send(
            "b",
            json!({"type": "acquire", "id": 2, "want": [{"pool": "ports"}], "wait_ms": 250})
        ),
        ["b: queued 2 at 1"]
    );
    assert_eq!(h.broker.next_deadline(), Some(h.at(250)));
    assert_eq!(h.advance(249), Vec::<String>::new());
    assert_eq!(
        h.advance(1),
        ["b: error 2 timeout: no grant within `wait_ms` (250 ms)"]
    );
    assert_eq!(h.broker.stats().waiting, 0);
    assert_eq!(h.broker.next_deadline(), None);
    assert!(h.event_types().contains(&"request_timed_out".to_string()));
}

#[test]
fn a_late_tick_loses_nothing_because_every_input_fires_due_deadlines_first() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.send(
        "b",
        json!({"type": "acquire", "id": 2, "want": [{"pool": "ports"}], "wait_ms": 100}),
    );
    h.now += std::time::Duration::from_millis(150);
    // The release comes after b's deadline: b has timed out and does not get the port.
    assert_eq!(
        h.release("a", "lease-3"),
        [
            "b: error 2 timeout: no grant within `wait_ms` (100 ms)",
            "a: released lease-3"
        ]
    );
}

#[test]
fn cancel() {
    let mut h = ports(1);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.acquire("a", 2, json!([{"pool": "ports"}])),
        ["a: queued 2 at 1"]
    );
    assert_eq!(
        h.send("a", json!({"type": "cancel", "id": 2})),
        ["a: cancelled 2"]
    );
    assert_eq!(
        h.send("a", json!({"type": "cancel", "id": 2})),
        [
            "a: error 2 unknown_request: no waiting request with id 2 (it may have been granted or \
          timed out already)"
        ]
    );
    // A granted request is not waiting either.
    assert_eq!(h.send("a", json!({"type": "cancel", "id": 1})).len(), 1);
}

#[test]
fn only_the_holder_releases() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.release("b", "lease-3"),
        ["b: error unknown_lease: this session holds no lease `lease-3`"]
    );
    assert_eq!(
        h.release("a", "lease-99"),
        ["a: error unknown_lease: this session holds no lease `lease-99`"]
    );
    assert_eq!(h.release("a", "lease-3"), ["a: released lease-3"]);
    assert_eq!(
        h.release("a", "lease-3"),
        ["a: error unknown_lease: this session holds no lease `lease-3`"]
    );
}

#[test]
fn priority_then_arrival() {
    let mut h = ports(1);
    for s in ["holder", "early", "late", "urgent"] {
        h.connect(s);
    }
    h.acquire("holder", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.acquire("early", 1, json!([{"pool": "ports"}])),
        ["early: queued 1 at 1"]
    );
    assert_eq!(
        h.acquire("late", 1, json!([{"pool": "ports"}])),
        ["late: queued 1 at 2"]
    );
    assert_eq!(
        h.send(
            "urgent",
            json!({"type": "acquire", "id": 1, "want": [{"pool": "ports"}], "priority": 5})
        ),
        ["urgent: queued 1 at 1"]
    );
    let lease = h.broker.leases()[0].lease.to_string();
    let out = h.release("holder", &lease);
    assert_eq!(out[1], "urgent: granted 1 lease-10 ports/20000");
    let out = h.release("urgent", "lease-10");
    assert_eq!(out[1], "early: granted 1 lease-12 ports/20000");
    let out = h.release("early", "lease-12");
    assert_eq!(out[1], "late: granted 1 lease-14 ports/20000");
}

#[test]
fn a_large_request_is_not_starved_by_small_ones() {
    let mut h = ports(3);
    for s in ["x", "y", "z", "big", "small"] {
        h.connect(s);
    }
    h.acquire("x", 1, json!([{"pool": "ports"}])); // lease-6
    h.acquire("y", 1, json!([{"pool": "ports"}])); // lease-7
    h.acquire("z", 1, json!([{"pool": "ports"}])); // lease-8
    assert_eq!(
        h.acquire("big", 1, json!([{"pool": "ports", "count": 3}])),
        ["big: queued 1 at 1"]
    );
    assert_eq!(
        h.acquire("small", 1, json!([{"pool": "ports"}])),
        ["small: queued 1 at 2"]
    );
    // A port frees up. `small` could use it, but `big` is ahead and could use it too, so it is
    // kept for `big`.
    assert_eq!(h.release("x", "lease-6"), ["x: released lease-6"]);
    assert_eq!(h.release("y", "lease-7"), ["y: released lease-7"]);
    // Even a newcomer that would fit is not let in ahead.
    h.connect("newcomer");
    assert_eq!(
        h.acquire("newcomer", 1, json!([{"pool": "ports"}])),
        ["newcomer: queued 1 at 3"]
    );
    assert_eq!(
        h.release("z", "lease-8"),
        [
            "z: released lease-8",
            "big: granted 1 lease-16 ports/20000 ports/20001 ports/20002"
        ]
    );
    assert_eq!(
        h.release("big", "lease-16"),
        [
            "big: released lease-16",
            "small: granted 1 lease-18 ports/20000",
            "newcomer: granted 1 lease-19 ports/20001"
        ]
    );
}

#[test]
fn a_later_request_may_go_first_when_it_takes_nothing_the_earlier_could_use() {
    let mut h = lab();
    for s in ["a", "b", "c"] {
        h.connect(s);
    }
    h.acquire(
        "a",
        1,
        json!([{"pool": "boards", "labels": {"arch": "arm64"}, "count": 2}]),
    );
    // b waits for an arm board...
    assert_eq!(
        h.acquire(
            "b",
            1,
            json!([{"pool": "boards", "labels": {"arch": "arm64"}}])
        ),
        ["b: queued 1 at 1"]
    );
    // ...which c's x86 board and ports are not: c is granted though it came later.
    assert_eq!(
        h.acquire(
            "c",
            1,
            json!([{"pool": "boards", "labels": {"arch": "x86"}}, {"pool": "ports"}])
        ),
        ["c: granted 1 lease-6 boards/nuc-1 ports/20000"]
    );
    // But a request for *any* board would compete with b for the arm boards, so it waits.
    assert_eq!(
        h.acquire("c", 2, json!([{"pool": "boards"}])),
        ["c: queued 2 at 2"]
    );
}

#[test]
fn one_release_can_wake_a_waiter_behind_one_that_stays_blocked() {
    let mut h = lab();
    for s in ["a", "b", "c", "d"] {
        h.connect(s);
    }
    h.acquire(
        "a",
        1,
        json!([{"pool": "boards", "labels": {"arch": "arm64", "lab": "b2"}},
               {"pool": "boards", "labels": {"arch": "x86"}}]),
    ); // lease-5: rpi-1 and nuc-1
    h.acquire("b", 1, json!([{"pool": "boards", "labels": {"lab": "b3"}}])); // lease-6: rpi-2
    assert_eq!(
        h.acquire(
            "c",
            1,
            json!([{"pool": "boards", "count": 2, "labels": {"arch": "arm64"}}])
        ),
        ["c: queued 1 at 1"]
    );
    assert_eq!(
        h.acquire(
            "d",
            1,
            json!([{"pool": "boards", "labels": {"arch": "x86"}}])
        ),
        // Positions count every earlier waiter of the pool, whatever labels it wants.
        ["d: queued 1 at 2"]
    );
    // Freeing rpi-1 and nuc-1 at once: c still lacks rpi-2 and keeps rpi-1 reserved, but the
    // walk must go on past c, because d can use nuc-1, which c cannot.
    assert_eq!(
        h.release("a", "lease-5"),
        ["a: released lease-5", "d: granted 1 lease-10 boards/nuc-1"]
    );
}

#[test]
fn a_departing_waiter_frees_its_reservations_for_everyone_behind_it() {
    let mut h = lab();
    for s in ["holder", "w", "v", "u"] {
        h.connect(s);
    }
    h.acquire(
        "holder",
        1,
        json!([{"pool": "boards", "labels": {"lab": "b3"}}]),
    ); // rpi-2
    // w wants every board, so it reserves the free rpi-1 and nuc-1 for itself.
    assert_eq!(
        h.acquire("w", 1, json!([{"pool": "boards", "count": 3}])),
        ["w: queued 1 at 1"]
    );
    assert_eq!(
        h.acquire(
            "v",
            1,
            json!([{"pool": "boards", "count": 2, "labels": {"arch": "arm64"}}])
        ),
        ["v: queued 1 at 2"]
    );
    assert_eq!(
        h.acquire(
            "u",
            1,
            json!([{"pool": "boards", "labels": {"arch": "x86"}}])
        ),
        ["u: queued 1 at 3"]
    );
    // When w gives up, v still cannot be served (rpi-2 is held) and now reserves rpi-1, but
    // nuc-1 must reach u.
    assert_eq!(
        h.send("w", json!({"type": "cancel", "id": 1})),
        ["w: cancelled 1", "u: granted 1 lease-10 boards/nuc-1"]
    );
}

#[test]
fn shared_resources_have_a_capacity() {
    let mut h = Harness::new(json!({
        "pool": [{"name": "hosts", "resource": [{"name": "build-1", "capacity": 2}]}]
    }));
    for s in ["a", "b", "c"] {
        h.connect(s);
    }
    assert_eq!(
        h.acquire("a", 1, json!([{"pool": "hosts"}])),
        ["a: granted 1 lease-4 hosts/build-1"]
    );
    assert_eq!(
        h.acquire("b", 1, json!([{"pool": "hosts"}])),
        ["b: granted 1 lease-5 hosts/build-1"]
    );
    assert_eq!(
        h.acquire("c", 1, json!([{"pool": "hosts"}])),
        ["c: queued 1 at 1"]
    );
    // One request never gets the same resource twice, even with room for two holders.
    assert_eq!(
        h.send("c", json!({"type": "cancel", "id": 1})),
        ["c: cancelled 1"]
    );
    h.release("a", "lease-4");
    h.release("b", "lease-5");
    assert_eq!(
        h.acquire("c", 2, json!([{"pool": "hosts", "count": 2}])),
        ["c: error 2 unsatisfiable: pool `hosts` has 1 resource; 2 wanted"]
    );
    assert_eq!(h.broker.stats().slots_free, 2);
}

#[test]
fn queue_positions_are_coalesced() {
    let mut h = ports(1);
    h.connect("holder");
    h.acquire("holder", 1, json!([{"pool": "ports"}]));
    for i in 0..5 {
        let s = format!("w{i}");
        h.connect(&s);
        assert_eq!(
            h.acquire(&s, 1, json!([{"pool": "ports"}])),
            [format!("{s}: queued 1 at {}", i + 1)]
        );
    }
    // Three releases in a row: each costs one grant and no position updates.
    let mut lease = h.broker.leases()[0].lease.to_string();
    let mut holder = "holder".to_string();
    for _ in 0..3 {
        let out = h.release(&holder, &lease);
        assert_eq!(out.len(), 2, "{out:?}");
        let granted = &h.broker.leases()[0];
        lease = granted.lease.to_string();
        holder = granted.session.to_string();
    }
    // The update comes with the next tick, one message for each waiter whose position
    // changed, no earlier than a second after it was last told.
    assert_eq!(h.broker.next_deadline(), Some(h.at(1000)));
    assert_eq!(h.advance(999), Vec::<String>::new());
    assert_eq!(h.advance(1), ["w3: queued 1 at 1", "w4: queued 1 at 2"]);
    assert_eq!(h.broker.next_deadline(), None);
    // The next change is told no sooner than a second after the last update.
    h.release(&holder, &lease);
    assert_eq!(h.broker.next_deadline(), Some(h.at(2000)));
    assert_eq!(h.advance(1000), ["w4: queued 1 at 1"]);
    let queue = h.broker.queue();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].position, 1);
}

#[test]
fn position_of_a_request_over_several_pools_counts_each_competitor_once() {
    let mut h = lab();
    for s in ["hold", "p", "q", "pq", "new"] {
        h.connect(s);
    }
    h.acquire(
        "hold",
        1,
        json!([{"pool": "ports", "count": 3}, {"pool": "boards", "count": 3}]),
    );
    h.acquire("p", 1, json!([{"pool": "ports"}]));
    h.acquire("q", 1, json!([{"pool": "boards"}]));
    h.acquire("pq", 1, json!([{"pool": "ports"}, {"pool": "boards"}]));
    // Ahead of `new` in either pool: p, q, pq (pq once, though it is in both queues).
    assert_eq!(
        h.acquire("new", 1, json!([{"pool": "ports"}, {"pool": "boards"}])),
        ["new: queued 1 at 4"]
    );
    let positions: Vec<u64> = h.broker.queue().iter().map(|w| w.position).collect();
    assert_eq!(positions, [1, 1, 3, 4]);
}

#[test]
fn clean_close_releases_at_once_and_drops_waiting_requests() {
    let mut h = ports(1);
    for s in ["a", "b", "c"] {
        h.connect(s);
    }
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("b", 1, json!([{"pool": "ports"}]));
    h.acquire("c", 1, json!([{"pool": "ports"}]));
    assert_eq!(h.disconnect("b", Disconnect::Clean), Vec::<String>::new());
    assert_eq!(
        h.disconnect("a", Disconnect::Clean),
        ["c: granted 1 lease-11 ports/20000"]
    );
    let causes: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Released { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect();
    assert_eq!(causes, [ReleaseCause::Disconnect]);
    assert_eq!(h.broker.stats().sessions_connected, 1);
}

#[test]
fn unclean_close_keeps_leases_for_a_resume() {
    let mut h = ports(2);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("a", 2, json!([{"pool": "ports", "count": 2}]));
    let out = h.disconnect_raw("a", Disconnect::Lost);
    assert!(out.messages.is_empty());
    assert_eq!(h.broker.leases().len(), 1, "the lease is kept");
    assert_eq!(
        h.broker.stats().waiting,
        0,
        "the waiting request is dropped"
    );
    assert!(!h.broker.leases()[0].connected);

    h.advance(10_000);
    h.connect("a2");
    let out = h.send_raw("a2", json!({"type": "resume", "session": "a"}));
    assert_eq!(lines(&out), ["a: resumed a [lease-2]"]);
    // The new connection adopts the old session id; there is no old connection to close.
    assert_eq!(out.adopted.len(), 1);
    assert_eq!(out.adopted[0].connection.as_str(), "a2");
    assert_eq!(out.adopted[0].session.as_str(), "a");
    assert!(out.close.is_empty());
    let ServerMessage::Resumed(resumed) = &out.messages[0].1 else {
        panic!()
    };
    assert_eq!(resumed.leases[0].resources[0].name, "20000");
    // It continues as `a`: it can release its lease, and `a2` no longer exists.
    assert_eq!(h.release("a", "lease-2"), ["a: released lease-2"]);
    assert_eq!(h.broker.sessions().len(), 1);
    assert_eq!(
        h.broker.next_deadline(),
        None,
        "no grace timer is left behind"
    );
}

/// A resumable session whose client is gone (its socket closed without a close frame: the
/// process died) ends at once, like a clean close: its lease goes to the next in line with
/// no grace, and there is nothing to resume. The journal still says the close was unclean.
#[test]
fn a_resumable_session_whose_client_is_gone_releases_at_once() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("b", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.disconnect("a", Disconnect::Gone),
        ["b: granted 1 lease-7 ports/20000"]
    );
    assert_eq!(h.broker.next_deadline(), None, "no grace timer is set");
    let causes: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Released { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect();
    assert_eq!(causes, [ReleaseCause::Disconnect]);
    assert!(
        h.events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::SessionDisconnected { clean: false, .. }))
    );
    h.connect("a2");
    let out = h.send_raw("a2", json!({"type": "resume", "session": "a"}));
    assert!(matches!(
        &out.messages[0].1,
        ServerMessage::Error(e) if e.code == ErrorCode::UnknownSession
    ));
}

#[test]
fn a_session_that_is_not_resumable_ends_with_its_connection_however_it_ends() {
    let mut h = ports(1);
    let welcome = h.connect_fixed("a");
    assert_eq!(welcome.len(), 1);
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("b", 1, json!([{"pool": "ports"}]));
    // A dropped connection (a killed process, a silent peer) frees the resource at once.
    assert_eq!(
        h.disconnect("a", Disconnect::Lost),
        ["b: granted 1 lease-7 ports/20000"]
    );
    assert!(
        h.broker
            .sessions()
            .iter()
            .all(|s| s.session.as_str() != "a")
    );
    let causes: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Released { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect();
    assert_eq!(causes, [ReleaseCause::Disconnect]);
    // The journal says both what the client asked for and how the connection ended.
    let connected: Vec<bool> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SessionConnected { resumable, .. } => Some(*resumable),
            _ => None,
        })
        .collect();
    assert_eq!(connected, [false, true]);
    assert!(
        h.events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::SessionDisconnected { clean: false, .. }))
    );
    // And there is nothing to resume.
    h.connect("a2");
    let out = h.send_raw("a2", json!({"type": "resume", "session": "a"}));
    assert!(matches!(
        &out.messages[0].1,
        ServerMessage::Error(e) if e.code == ErrorCode::UnknownSession
    ));
}

#[test]
fn welcome_tells_a_resumable_session_its_grace() {
    let mut h = ports(1);
    h.connect("a");
    h.connect_fixed("b");
    let welcomes: Vec<String> = h
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SessionConnected { .. }))
        .map(|e| serde_json::to_string(&e.kind).unwrap())
        .collect();
    assert_eq!(
        welcomes,
        [
            r#"{"type":"session_connected","session":"a","resumable":true}"#,
            r#"{"type":"session_connected","session":"b","resumable":false}"#
        ]
    );
    let out = h.broker.handle(
        h.now,
        Input::Connected {
            session: "c".into(),
            resumable: true,
        },
    );
    let ServerMessage::Welcome(w) = &out.messages[0].1 else {
        panic!("{out:?}")
    };
    assert_eq!(w.resume_grace_ms, Some(30_000));
    let out = h.broker.handle(
        h.now,
        Input::Connected {
            session: "d".into(),
            resumable: false,
        },
    );
    let ServerMessage::Welcome(w) = &out.messages[0].1 else {
        panic!("{out:?}")
    };
    assert_eq!(w.resume_grace_ms, None);
    assert_eq!(
        out.messages[0].1.to_json(),
        r#"{"type":"welcome","session":"d","protocol":1}"#
    );
}

#[test]
fn a_resumed_session_continues_as_resumable_as_its_new_connection_asked() {
    let mut h = ports(2);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.disconnect("a", Disconnect::Lost);
    // Resumed by a connection that did not ask to be resumable...
    h.connect_fixed("a2");
    assert_eq!(
        h.send("a2", json!({"type": "resume", "session": "a"})),
        ["a: resumed a [lease-2]"]
    );
    // ...the session now ends with its connection.
    h.disconnect("a", Disconnect::Lost);
    assert!(h.broker.leases().is_empty());
}

#[test]
fn journals_from_before_resumable_sessions_read_as_resumable() {
    let event: summoner_broker::Event =
        serde_json::from_str(r#"{"seq":1,"type":"session_connected","session":"old"}"#).unwrap();
    assert!(matches!(
        event.kind,
        EventKind::SessionConnected {
            resumable: true,
            ..
        }
    ));
}

#[test]
fn resuming_a_session_whose_old_connection_still_looks_open_closes_it() {
    let mut h = ports(1);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.connect("b");
    let out = h.send_raw("b", json!({"type": "resume", "session": "a"}));
    assert_eq!(out.close.len(), 1);
    assert_eq!(out.close[0].as_str(), "a");
    assert_eq!(lines(&out), ["a: resumed a [lease-2]"]);
}

/// The old connection of a session resumed while it still looked open (cut off by a network
/// failure the pings have not noticed yet) is closed, and what it waited for ends with it, as
/// on any disconnect: the client sends it again after the resume, with the same id.
#[test]
fn resuming_a_session_that_still_looks_open_drops_what_it_waited_for() {
    let mut h = ports(1);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("a", 2, json!([{"pool": "ports"}]));
    h.connect("b");
    let out = h.send_raw("b", json!({"type": "resume", "session": "a"}));
    assert_eq!(out.close.len(), 1);
    assert_eq!(h.broker.stats().waiting, 0);
    assert!(h.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::RequestCancelled {
            cause: CancelCause::Disconnect,
            ..
        }
    )));
    assert_eq!(
        h.acquire("a", 2, json!([{"pool": "ports"}])),
        ["a: queued 2 at 1"]
    );
}

#[test]
fn resume_errors() {
    let mut h = ports(1);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    assert_eq!(
        h.send("a", json!({"type": "resume", "session": "nope"})),
        [
            "a: error bad_request: `resume` must come before any `acquire` on a connection: this \
          session already holds or waits for resources"
        ]
    );
    h.connect("b");
    assert_eq!(
        h.send("b", json!({"type": "resume", "session": "nope"})),
        [
            "b: error unknown_session: no session `nope` to resume: it never existed, ended with \
          its connection, or its grace period of 30s ended"
        ]
    );
    // A session resuming itself just hears what it holds.
    assert_eq!(
        h.send("a", json!({"type": "resume", "session": "a"})),
        ["a: resumed a [lease-2]"]
    );
}

#[test]
fn grace_expiry_releases_and_regrants() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("b", 1, json!([{"pool": "ports"}]));
    h.disconnect("a", Disconnect::Lost);
    assert_eq!(h.broker.next_deadline(), Some(h.at(30_000)));
    assert_eq!(h.advance(29_999), Vec::<String>::new());
    assert_eq!(h.advance(1), ["b: granted 1 lease-8 ports/20000"]);
    let tail: Vec<String> = h.event_types().into_iter().rev().take(3).collect();
    assert_eq!(tail, ["granted", "released", "session_expired"]);
    assert!(h.events.iter().any(|e| matches!(
        e.kind,
        EventKind::Released {
            cause: ReleaseCause::GraceExpired,
            ..
        }
    )));
    h.connect("a3");
    assert_eq!(
        h.send("a3", json!({"type": "resume", "session": "a"}))[0],
        "a3: error unknown_session: no session `a` to resume: it never existed, ended with \
         its connection, or its grace period of 30s ended"
    );
}

#[test]
fn max_hold_time_revokes() {
    let mut h = Harness::new(json!({
        "pool": [{"name": "boards", "max_hold": "10m", "resource": [{"name": "rpi-1"}]}]
    }));
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "boards"}]));
    h.acquire("b", 1, json!([{"pool": "boards"}]));
    assert_eq!(h.broker.leases()[0].revoke_at, Some(h.at(600_000)));
    assert_eq!(
        h.advance(600_000),
        [
            "a: revoked lease-3 (max hold time 10m exceeded)",
            "b: granted 1 lease-6 boards/rpi-1"
        ]
    );
}

#[test]
fn admin_force_release() {
    let mut h = ports(1);
    h.connect("a");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    let (result, out) = h.admin(json!({"op": "revoke", "lease": "lease-2"}));
    assert_eq!(result, Ok(()));
    assert_eq!(out, ["a: revoked lease-2 (released by admin)"]);
    let (result, _) = h.admin(json!({"op": "revoke", "lease": "lease-2"}));
    assert_eq!(result, Err("no lease `lease-2`".into()));
    assert!(h.events.iter().any(|e| matches!(
        e.kind,
        EventKind::Revoked {
            cause: RevokeCause::Admin,
            ..
        }
    )));
}

#[test]
fn disable_keeps_the_holder_and_stops_new_grants() {
    let mut h = ports(1);
    h.connect("a");
    h.connect("b");
    h.acquire("a", 1, json!([{"pool": "ports"}]));
    h.acquire("b", 1, json!([{"pool": "ports"}]));
    let (result, out) = h.admin(json!({"op": "disable", "pool": "ports", "resource": "20000"}));
    assert_eq!((result, out), (Ok(()), vec![]));
    assert_eq!(
        h.release("a", "lease-3"),
        ["a: released lease-3"],
        "not re-granted while disabled"
    );
    let (_, out) = h.admin(json!({"op": "enable", "pool": "ports", "resource": "20000"}));
    assert_eq!(out, ["b: granted 1 lease-8 ports/20000"]);
    let (result, _) = h.admin(json!({"op": "disable", "pool": "ports", "resource": "nope"}));
    assert_eq!(result, Err("pool `ports` has no resource `nope`".into()));
}

#[test]
fn removing_a_held_resource_revokes_then_removes_and_refuses_the_impossible() {
    let mut h = lab();
    h.connect("a");
    h.connect("b");
    h.acquire(
        "a",
        1,
        json!([{"pool": "boards", "labels": {"arch": "x86"}}, {"pool": "ports"}]),
    );
    h.acquire(
        "b",
        1,
        json!([{"pool": "boards", "labels": {"arch": "x86"}}]),
    );
    let (result, out) =
        h.admin(json!({"op": "remove_resource", "pool": "boards", "resource": "nuc-1"}));
    assert_eq!(result, Ok(()));
    assert_eq!(
        out,
        [
            "a: revoked lease-3 (resource `nuc-1` of pool `boards` was removed by admin)",
            "b: error 1 unsatisfiable: pool `boards` has 0 resources with labels {arch=x86}; 1 \
             wanted (resource `nuc-1` was removed)"
        ]
    );
    // The whole lease went, so its port is free again.
    assert_eq!(h.broker.stats().slots_held, 0);
    assert!(
        h.broker
            .pool("boards")
            .unwrap()
            .resources
            .iter()
            .all(|r| r.name != "nuc-1")
    );
}

#[test]
fn adding_and_changing_resources_wakes_waiters() {
    let mut h = lab();
    h.connect("a");
    assert_eq!(
        h.acquire("a", 1, json!([{"pool": "boards", "count": 4}])),
        ["a: error 1 unsatisfiable: pool `boards` has 3 resources; 4 wanted"]
    );
    h.acquire("a", 2, json!([{"pool": "boards", "count": 3}]));
    assert_eq!(
        h.acquire(
            "a",
            3,
            json!([{"pool": "boards", "labels": {"arch": "riscv"}}])
        )[0],
        "a: error 3 unsatisfiable: pool `boards` has 0 resources with labels {arch=riscv}; 1 wanted"
    );
    h.acquire("a", 4, json!([{"pool": "boards"}]));
    let (result, out) = h.admin(json!({"op": "add_resource", "pool": "boards",
        "resource": {"name": "vf2", "labels": {"arch": "riscv"}}}));
    assert_eq!(result, Ok(()));
    // The event for the new resource comes first, so the grant's lease is numbered after it.
    assert_eq!(out, ["a: granted 4 lease-5 boards/vf2"]);
    let (result, _) = h.admin(json!({"op": "add_resource", "pool": "boards",
        "resource": {"name": "vf2"}}));
    assert_eq!(
        result,
        Err("pool `boards` already has a resource `vf2`".into())
    );

    // A label change can make a resource match a waiter.
    h.connect("b");
    assert_eq!(
        h.acquire("b", 1, json!([{"pool": "ports", "count": 3}]))[0],
        "b: granted 1 lease-7 ports/20000 ports/20001 ports/20002"
    );
    h.connect("c");
    assert_eq!(
        h.acquire(
            "c",
            1,
            json!([{"pool": "boards", "labels": {"arch": "riscv"}}])
        ),
        ["c: queued 1 at 1"]
    );
    h.release("a", "lease-5");
    assert_eq!(h.broker.leases().len(), 3, "c got vf2 when a released it");
    assert_eq!(h.broker.leases()[2].session.as_str(), "c");
}

#[test]
fn lowering_capacity_keeps_holders() {
    let mut h = Harness::new(json!({
        "pool": [{"name": "hosts", "resource": [{"name": "build-1", "capacity": 3}]}]
    }));
    for s in ["a", "b", "c"] {
        h.connect(s);
        h.acquire(s, 1, json!([{"pool": "hosts"}]));
    }
    let (result, out) = h.admin(json!({"op": "change_resource", "pool": "hosts",
        "resource": {"name": "build-1", "capacity": 1}}));
    assert_eq!((result, out), (Ok(()), vec![]));
    assert_eq!(h.broker.stats().slots_held, 3);
    h.release("a", "lease-2");
    h.release("b", "lease-4");
    h.connect("d");
    assert_eq!(
        h.acquire("d", 1, json!([{"pool": "hosts"}])),
        ["d: queued 1 at 1"]
    );
    assert_eq!(
        h.release("c", "lease-6")[1],
        "d: granted 1 lease-13 hosts/build-1"
    );
}

#[test]
fn adding_and_removing_pools() {
    let mut h = lab();
    h.connect("a");
    let (result, _) =
        h.admin(json!({"op": "add_pool", "pool": {"name": "vms", "resource": [{"name": "vm-1"}]}}));
    assert_eq!(result, Ok(()));
    h.acquire("a", 1, json!([{"pool": "vms"}, {"pool": "ports"}]));
    h.connect("b");
    assert_eq!(
        h.acquire("b", 1, json!([{"pool": "vms"}])),
        ["b: queued 1 at 1"]
    );
    let (result, out) = h.admin(json!({"op": "remove_pool", "pool": "vms"}));
    assert_eq!(result, Ok(()));
    assert_eq!(
        out,
        [
            "a: revoked lease-3 (pool `vms` was removed by admin)",
            "b: error 1 unknown_pool: pool `vms` was removed"
        ]
    );
    assert_eq!(h.broker.pools().len(), 2);
    assert_eq!(h.broker.stats().slots_held, 0);
    let (result, _) = h.admin(json!({"op": "add_pool", "pool": {"name": "ports"}}));
    assert_eq!(result, Err("pool `ports` already exists".into()));
}

#[test]
fn restore_after_a_crash_puts_leases_back_for_their_holders() {
    let mut h = lab();
    h.connect("a");
    h.connect("b");
    h.acquire(
        "a",
        1,
        json!([{"pool": "boards", "labels": {"lab": "b2"}}, {"pool": "ports"}]),
    );
    h.acquire("b", 7, json!([{"pool": "ports", "count": 2}]));
    h.release("b", "lease-4");
    h.acquire("b", 8, json!([{"pool": "ports"}]));

    // The server dies. What the journal says is held comes back, in orphaned sessions.
    let (held, next_seq) = fold_events(&h.events);
    assert_eq!(held.len(), 2);
    let config = h.broker.config();
    let later = h.now + std::time::Duration::from_secs(5);
    let (broker, out) = Broker::restore(config, held, next_seq, later).unwrap();
    assert!(out.events.is_empty());
    broker.check_invariants().unwrap();
    let mut r = Harness::with(broker);
    r.now = later;
    assert_eq!(r.broker.stats().sessions_orphaned, 2);
    assert_eq!(r.broker.stats().slots_held, 3);

    // Nothing is granted twice: a newcomer gets only what is really free.
    r.connect("c");
    assert_eq!(
        r.acquire("c", 1, json!([{"pool": "ports", "count": 2}])),
        ["c: queued 1 at 1"]
    );
    // The holder of lease-3 comes back and resumes; the other never does.
    r.connect("a-again");
    assert_eq!(
        r.send("a-again", json!({"type": "resume", "session": "a"})),
        ["a: resumed a [lease-3]"]
    );
    let out = r.advance_raw(30_000);
    assert_eq!(
        lines(&out),
        ["c: granted 1 lease-13 ports/20001 ports/20002"]
    );
    // Sequence numbers continue after the journal's (which ended at 6).
    let seqs: Vec<u64> = out.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [11, 12, 13]);
    assert_eq!(
        h.event_types()[..2],
        ["session_connected", "session_connected"]
    );
    assert_eq!(
        r.event_types(),
        [
            "session_connected",
            "request_queued",
            "session_connected",
            "session_resumed",
            "session_expired",
            "released",
            "granted"
        ]
    );
}

#[test]
fn restore_releases_the_leases_of_sessions_that_cannot_resume() {
    let mut h = ports(3);
    h.connect("keeps");
    h.connect_fixed("gone");
    h.acquire("keeps", 1, json!([{"pool": "ports"}]));
    h.acquire("gone", 1, json!([{"pool": "ports"}]));
    // Resumed by a connection that is not resumable: the fold follows the adoption.
    h.connect("r");
    h.disconnect("keeps", Disconnect::Lost);
    h.connect_fixed("keeps2");
    h.send("keeps2", json!({"type": "resume", "session": "keeps"}));
    h.connect_fixed("x");
    h.connect("y");
    h.send("y", json!({"type": "resume", "session": "x"}));
    h.acquire("x", 2, json!([{"pool": "ports"}]));

    let (held, next_seq) = fold_events(&h.events);
    let flags: Vec<(String, bool)> = held
        .iter()
        .map(|l| (l.session.to_string(), l.resumable))
        .collect();
    assert_eq!(
        flags,
        [
            ("keeps".to_owned(), false),
            ("gone".to_owned(), false),
            ("x".to_owned(), true)
        ]
    );
    let (broker, out) = Broker::restore(h.broker.config(), held, next_seq, h.now).unwrap();
    let released: Vec<(String, ReleaseCause)> = out
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Released { lease, cause, .. } => Some((lease.to_string(), *cause)),
            _ => None,
        })
        .collect();
    assert_eq!(
        released,
        [
            ("lease-3".to_owned(), ReleaseCause::Restart),
            ("lease-4".to_owned(), ReleaseCause::Restart)
        ]
    );
    broker.check_invariants().unwrap();
    assert_eq!(broker.stats().slots_held, 1);
    assert_eq!(broker.leases()[0].session.as_str(), "x");
}

#[test]
fn restore_revokes_what_no_longer_fits() {
    let mut h = lab();
    h.connect("a");
    h.acquire(
        "a",
        1,
        json!([{"pool": "boards", "labels": {"arch": "x86"}}]),
    );
    h.acquire("a", 2, json!([{"pool": "ports"}]));
    let (held, next_seq) = fold_events(&h.events);
    // The new config no longer has the x86 board.
    let config: BrokerConfig = serde_json::from_value(json!({
        "pool": [{"name": "boards", "resource": [{"name": "rpi-1"}]},
                 {"name": "ports", "range": {"from": 20000, "to": 20000}}]
    }))
    .unwrap();
    let (broker, out) = Broker::restore(config, held, next_seq, h.now).unwrap();
    broker.check_invariants().unwrap();
    assert_eq!(broker.leases().len(), 1);
    assert_eq!(
        serde_json::to_value(&out.events).unwrap(),
        json!([{"seq": 4, "type": "revoked", "lease": "lease-2", "session": "a",
                "cause": "not_restorable",
                "reason": "resource `nuc-1` of pool `boards` no longer exists", "held_ms": 0}])
    );
}

#[test]
fn messages_from_an_unknown_session_are_an_internal_error() {
    let mut h = lab();
    let out = h.broker.handle(
        h.now,
        Input::Message {
            session: "ghost".into(),
            msg: summoner_protocol::ClientMessage::Ping(Default::default()),
        },
    );
    assert_eq!(
        lines(&out),
        ["ghost: error internal: session `ghost` is not connected"]
    );
    // A disconnect of an unknown session is ignored.
    assert!(h.disconnect_raw("ghost", Disconnect::Clean).is_empty());
}

#[test]
fn config_reads_the_server_toml_shape_and_rejects_mistakes() {
    let config: BrokerConfig = serde_json::from_value(json!({
        "resume_grace": "1m",
        "pool": [{"name": "ports", "range": {"from": 1, "to": 2}, "max_hold": "1h30m"}]
    }))
    .unwrap();
    assert_eq!(config.resume_grace, std::time::Duration::from_secs(60));
    assert_eq!(
        config.pools[0].max_hold,
        Some(std::time::Duration::from_secs(5400))
    );
    let broker = Broker::new(config).unwrap();
    assert_eq!(broker.pools()[0].resources[1].name, "2");

    let err = serde_json::from_value::<BrokerConfig>(json!({"pool": [{"name": "p", "size": 3}]}))
        .unwrap_err();
    assert!(err.to_string().starts_with("unknown field `size`"), "{err}");
    let err = serde_json::from_value::<BrokerConfig>(json!({"resume_grace": "30"})).unwrap_err();
    assert!(
        err.to_string()
            .contains("`30` has no unit: write `30s` or `30ms`"),
        "{err}"
    );

    for (config, message) in [
        (
            json!({"pool": [{"name": "p"}, {"name": "p"}]}),
            "pool `p` is defined twice",
        ),
        (
            json!({"pool": [{"name": "p", "range": {"from": 1, "to": 2},
                   "resource": [{"name": "2"}]}]}),
            "pool `p` has two resources named `2`",
        ),
        (
            json!({"pool": [{"name": "p", "resource": [{"name": "x", "capacity": 0}]}]}),
            "resource `x` of pool `p` has capacity 0; it must be at least 1",
        ),
        (
            json!({"pool": [{"name": "p", "range": {"from": 3, "to": 2}}]}),
            "pool `p`: range from 3 to 2 is empty (`from` must not exceed `to`)",
        ),
    ] {
        let config: BrokerConfig = serde_json::from_value(config).unwrap();
        assert_eq!(Broker::new(config).unwrap_err().to_string(), message);
    }
}

#[test]
fn the_example_session_in_the_protocol_docs_is_what_the_engine_says() {
    let mut h = ports(1);
    // Lease ids as a server makes them, under a fixed key so the transcript is stable.
    h.broker
        .set_lease_key(summoner_broker::LeaseKey::new(*b"protocol.md key!"));
    let mut said: Vec<String> = Vec::new();
    let mut record = |out: summoner_broker::Outputs| {
        said.extend(out.messages.iter().map(|(_, m)| m.to_json()));
    };
    let input = |session: &str, msg: &str| Input::Message {
        session: session.into(),
        msg: summoner_protocol::ClientMessage::parse(msg).unwrap(),
    };
    let now = h.now;
    let docs = include_str!("../../../docs/protocol.md");
    let example = docs
        .split("## An example session")
        .nth(1)
        .expect("the docs have an example session");
    record(h.broker.handle(
        now,
        Input::Connected {
            session: "A…".into(),
            resumable: false,
        },
    ));
    let first = h.broker.handle(
        now,
        input(
            "A…",
            r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}]}"#,
        ),
    );
    let ServerMessage::Granted(grant) = &first.messages[0].1 else {
        panic!("{:?}", first.messages)
    };
    let lease = grant.lease.clone();
    record(first);
    record(h.broker.handle(
        now,
        Input::Connected {
            session: "B…".into(),
            resumable: true,
        },
    ));
    record(h.broker.handle(
        now,
        input(
            "B…",
            r#"{"type":"acquire","id":"b1","want":[{"pool":"ports"}],"wait_ms":60000}"#,
        ),
    ));
    record(h.broker.handle(
        now,
        input(
            "A…",
            r#"{"type":"acquire","id":2,"want":[{"pool":"ports"}],"wait_ms":0}"#,
        ),
    ));
    let release = format!(r#"{{"type":"release","lease":"{lease}"}}"#);
    assert!(example.contains(&format!("→ {release}")), "{release}");
    record(h.broker.handle(now, input("A…", &release)));
    record(h.broker.handle(
        now,
        Input::Disconnected {
            session: "B…".into(),
            how: Disconnect::Lost,
        },
    ));
    record(h.broker.handle(
        now,
        Input::Connected {
            session: "C…".into(),
            resumable: true,
        },
    ));
    record(
        h.broker
            .handle(now, input("C…", r#"{"type":"resume","session":"B…"}"#)),
    );
    for line in &said {
        assert!(
            example.contains(&format!("← {line}")),
            "the example lacks: {line}"
        );
    }
    // The doc's bad frame is answered as shown, too.
    let bad = summoner_protocol::ClientMessage::parse(r#"{"type":"relase","lease":"lease-2"}"#)
        .unwrap_err()
        .to_message()
        .to_json();
    assert!(
        example.contains(&format!("← {bad}")),
        "the example lacks: {bad}"
    );
    assert_eq!(said.len(), 9);
}

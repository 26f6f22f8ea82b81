//! The JSON form of every message, as snapshots. These are the examples in
//! `docs/protocol.md`, and the last test checks that the docs still show them verbatim.

use summoner_protocol::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn board() -> GrantedResource {
    GrantedResource {
        pool: "boards".into(),
        name: "rpi-1".into(),
        labels: labels(&[("arch", "arm64"), ("lab", "b2")]),
        props: Props::from([
            ("ip".to_string(), PropValue::from("10.0.0.5")),
            ("serial".to_string(), PropValue::from("/dev/ttyUSB0")),
        ]),
    }
}

fn port(n: u64) -> GrantedResource {
    GrantedResource {
        pool: "ports".into(),
        name: n.to_string(),
        labels: Labels::new(),
        props: Props::from([("port".to_string(), PropValue::from(n))]),
    }
}

const SESSION: &str = "9f2c4e1a7b3d4f60a1c2e3f405162738";

fn grant() -> Grant {
    Grant {
        id: "job-42".into(),
        lease: "lease-3c9e1f07a45b2d86e0c4f1a9b7d35e62".into(),
        resources: vec![board(), port(20000), port(20001)],
    }
}

/// Every example: (snapshot name, message as JSON text).
fn examples() -> Vec<(&'static str, String)> {
    let client = |m: ClientMessage| m.to_json();
    let server = |m: ServerMessage| m.to_json();
    vec![
        (
            "client_acquire_minimal",
            client(ClientMessage::Acquire(Acquire {
                id: 1u64.into(),
                want: vec![Want::new("ports")],
                wait_ms: None,
                priority: 0,
                note: None,
            })),
        ),
        (
            "client_acquire_full",
            client(ClientMessage::Acquire(Acquire {
                id: "job-42".into(),
                want: vec![
                    Want {
                        pool: "boards".into(),
                        count: 1,
                        labels: labels(&[("arch", "arm64")]),
                    },
                    Want {
                        pool: "ports".into(),
                        count: 2,
                        labels: Labels::new(),
                    },
                ],
                wait_ms: Some(60_000),
                priority: 10,
                note: Some("https://ci.example.com/builds/42".into()),
            })),
        ),
        (
            "client_release",
            client(ClientMessage::Release(Release {
                lease: "lease-3c9e1f07a45b2d86e0c4f1a9b7d35e62".into(),
            })),
        ),
        (
            "client_cancel",
            client(ClientMessage::Cancel(Cancel {
                id: "job-42".into(),
            })),
        ),
        (
            "client_resume",
            client(ClientMessage::Resume(Resume {
                session: SESSION.into(),
            })),
        ),
        ("client_ping", client(ClientMessage::Ping(Ping {}))),
        (
            "server_welcome",
            server(ServerMessage::Welcome(Welcome {
                session: SESSION.into(),
                protocol: PROTOCOL_VERSION,
                resume_grace_ms: None,
            })),
        ),
        (
            "server_welcome_resumable",
            server(ServerMessage::Welcome(Welcome {
                session: SESSION.into(),
                protocol: PROTOCOL_VERSION,
                resume_grace_ms: Some(30_000),
            })),
        ),
        (
            "server_queued",
            server(ServerMessage::Queued(Queued {
                id: "job-42".into(),
                position: 3,
            })),
        ),
        ("server_granted", server(ServerMessage::Granted(grant()))),
        (
            "server_released",
            server(ServerMessage::Released(Released {
                lease: "lease-3c9e1f07a45b2d86e0c4f1a9b7d35e62".into(),
            })),
        ),
        (
            "server_revoked_max_hold",
            server(ServerMessage::Revoked(Revoked {
                lease: "lease-3c9e1f07a45b2d86e0c4f1a9b7d35e62".into(),
                reason: "max hold time 10m exceeded".into(),
            })),
        ),
        (
            "server_revoked_admin",
            server(ServerMessage::Revoked(Revoked {
                lease: "lease-3c9e1f07a45b2d86e0c4f1a9b7d35e62".into(),
                reason: "released by admin".into(),
            })),
        ),
        (
            "server_resumed",
            server(ServerMessage::Resumed(Resumed {
                session: SESSION.into(),
                leases: vec![Grant {
                    id: 1u64.into(),
                    lease: "lease-a0f4e7c2913b58d6f2e1c07b4a9d3e85".into(),
                    resources: vec![port(20003)],
                }],
            })),
        ),
        (
            "server_cancelled",
            server(ServerMessage::Cancelled(Cancelled {
                id: "job-42".into(),
            })),
        ),
        (
            "server_error_timeout",
            server(ServerMessage::error(
                Some("job-42".into()),
                ErrorCode::Timeout,
                "no grant within `wait_ms` (60000 ms)",
            )),
        ),
        (
            "server_error_bad_request",
            ClientMessage::parse(r#"{"type":"aquire","id":1}"#)
                .unwrap_err()
                .to_message()
                .to_json(),
        ),
        ("server_pong", server(ServerMessage::Pong(Pong {}))),
    ]
}

#[test]
fn json_forms() {
    for (name, json) in examples() {
        insta::assert_snapshot!(name, json);
    }
}

#[test]
fn examples_parse_back() {
    for (name, json) in examples() {
        if name.starts_with("client_") {
            let msg = ClientMessage::parse(&json).unwrap();
            assert_eq!(msg.to_json(), json);
        } else {
            let msg = ServerMessage::parse(&json).unwrap();
            assert_eq!(msg.to_json(), json);
        }
    }
}

#[test]
fn the_protocol_docs_show_every_example_verbatim() {
    let docs = include_str!("../../../docs/protocol.md");
    let missing: Vec<String> = examples()
        .into_iter()
        .filter(|(_, json)| !docs.contains(json.as_str()))
        .map(|(name, json)| format!("{name}: {json}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md lacks these examples (update the docs or the test):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_protocol_docs_list_every_error_code() {
    let docs = include_str!("../../../docs/protocol.md");
    for code in ErrorCode::ALL {
        assert!(
            docs.contains(&format!("`{code}`")),
            "docs/protocol.md lacks `{code}`"
        );
    }
}

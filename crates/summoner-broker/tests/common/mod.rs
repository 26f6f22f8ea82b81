//! A tiny driver that makes engine scenarios read like a transcript.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use summoner_broker::{AdminOp, Broker, BrokerConfig, Disconnect, Event, Input, Outputs};
use summoner_protocol::{ClientMessage, ServerMessage};

pub struct Harness {
    pub broker: Broker,
    pub base: Instant,
    pub now: Instant,
    pub events: Vec<Event>,
}

impl Harness {
    pub fn new(config: Value) -> Self {
        let config: BrokerConfig = serde_json::from_value(config).expect("a valid config");
        Self::with(Broker::new(config).expect("a valid config"))
    }

    pub fn with(broker: Broker) -> Self {
        let base = Instant::now();
        Self {
            broker,
            base,
            now: base,
            events: Vec::new(),
        }
    }

    fn run(&mut self, input: Input) -> Outputs {
        let out = self.broker.handle(self.now, input);
        self.broker.check_invariants().expect("invariants hold");
        self.events.extend(out.events.iter().cloned());
        out
    }

    /// Connects a resumable session, as the Rust client does.
    pub fn connect(&mut self, session: &str) -> Vec<String> {
        self.connect_with(session, true)
    }

    /// Connects a session that ends with its connection, as a bare WebSocket client's does.
    pub fn connect_fixed(&mut self, session: &str) -> Vec<String> {
        self.connect_with(session, false)
    }

    fn connect_with(&mut self, session: &str, resumable: bool) -> Vec<String> {
        lines(&self.run(Input::Connected {
            session: session.into(),
            resumable,
        }))
    }

    /// Sends a client message written as JSON; returns the transcript of the answer.
    pub fn send(&mut self, session: &str, msg: Value) -> Vec<String> {
        lines(&self.send_raw(session, msg))
    }

    pub fn send_raw(&mut self, session: &str, msg: Value) -> Outputs {
        let msg = ClientMessage::parse(&msg.to_string()).expect("a valid client message");
        self.run(Input::Message {
            session: session.into(),
            msg,
        })
    }

    pub fn acquire(&mut self, session: &str, id: u64, want: Value) -> Vec<String> {
        self.send(
            session,
            serde_json::json!({"type": "acquire", "id": id, "want": want}),
        )
    }

    pub fn release(&mut self, session: &str, lease: &str) -> Vec<String> {
        self.send(
            session,
            serde_json::json!({"type": "release", "lease": lease}),
        )
    }

    pub fn disconnect(&mut self, session: &str, how: Disconnect) -> Vec<String> {
        lines(&self.disconnect_raw(session, how))
    }

    pub fn disconnect_raw(&mut self, session: &str, how: Disconnect) -> Outputs {
        self.run(Input::Disconnected {
            session: session.into(),
            how,
        })
    }

    pub fn admin(&mut self, op: Value) -> (Result<(), String>, Vec<String>) {
        let op: AdminOp = serde_json::from_value(op).expect("a valid admin op");
        let out = self.run(Input::Admin(op));
        let result = out.admin.clone().expect("an admin answer");
        (result.map_err(|e| e.to_string()), lines(&out))
    }

    /// Advances the clock and ticks.
    pub fn advance(&mut self, ms: u64) -> Vec<String> {
        lines(&self.advance_raw(ms))
    }

    pub fn advance_raw(&mut self, ms: u64) -> Outputs {
        self.now += Duration::from_millis(ms);
        self.run(Input::Tick)
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// The types of the events so far, for checking what was recorded.
    pub fn event_types(&self) -> Vec<String> {
        self.events.iter().map(event_type).collect()
    }
}

pub fn event_type(event: &Event) -> String {
    let json = serde_json::to_value(event).unwrap();
    json["type"].as_str().unwrap().to_owned()
}

/// One line per message: `session: what`, short enough to compare in bulk.
pub fn lines(out: &Outputs) -> Vec<String> {
    out.messages
        .iter()
        .map(|(session, msg)| format!("{session}: {}", line(msg)))
        .collect()
}

pub fn line(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Welcome(w) => format!("welcome {} v{}", w.session, w.protocol),
        ServerMessage::Queued(q) => format!("queued {} at {}", q.id, q.position),
        ServerMessage::Granted(g) => {
            let resources: Vec<String> = g
                .resources
                .iter()
                .map(|r| format!("{}/{}", r.pool, r.name))
                .collect();
            format!("granted {} {} {}", g.id, g.lease, resources.join(" "))
        }
        ServerMessage::Released(r) => format!("released {}", r.lease),
        ServerMessage::Revoked(r) => format!("revoked {} ({})", r.lease, r.reason),
        ServerMessage::Resumed(r) => {
            let leases: Vec<String> = r.leases.iter().map(|l| l.lease.to_string()).collect();
            format!("resumed {} [{}]", r.session, leases.join(" "))
        }
        ServerMessage::Cancelled(c) => format!("cancelled {}", c.id),
        ServerMessage::Error(e) => match &e.id {
            Some(id) => format!("error {id} {}: {}", e.code, e.message),
            None => format!("error {}: {}", e.code, e.message),
        },
        ServerMessage::Pong(_) => "pong".into(),
    }
}

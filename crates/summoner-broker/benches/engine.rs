//! Engine throughput: closed-loop acquire → grant → release cycles driven in-process, with no
//! network and no storage, to show how much of the server's budget the engine itself takes.
//!
//! `cargo bench -p summoner-broker --bench engine` prints plain figures. Two workloads:
//! - uncontended: 1,000 sessions over 1,000 resources (every acquire is granted at once);
//! - contended: 1,000 sessions over 100 resources (900 always wait; every release hands the
//!   resource to the head of the queue and the releaser queues again at the tail).
//!
//! Each is measured twice: engine only (messages built in code), and with the JSON codec a
//! server runs on every frame (parse the client's text, serialize every reply and event).
//!
//! Lease ids are made as a server makes them, a keyed hash per grant; with the environment
//! variable `BENCH_SEQUENTIAL_IDS` set they are `lease-N` instead, to see what the hash and the
//! longer ids cost (measured: up to ~0.3 µs of CPU per cycle, engine only).
//!
//! Besides the rate over wall time, each line gives the CPU time per cycle of the benchmark's
//! thread (on Linux). On a machine shared with other builds the wall-time rate drifts by half
//! from run to run while the CPU time per cycle moves much less, so compare that one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use summoner_broker::{Broker, BrokerConfig, Input, LeaseKey, Outputs, PoolConfig, RangeConfig};
use summoner_protocol::{
    Acquire, ClientMessage, LeaseId, Release, RequestId, ServerMessage, SessionId, Want,
};

const SESSIONS: usize = 1_000;
const RUN_FOR: Duration = Duration::from_secs(2);

struct Driver {
    broker: Broker,
    clock: Instant,
    codec: bool,
    out: Outputs,
    bytes: usize,
}

impl Driver {
    fn new(resources: u64, codec: bool) -> Self {
        let mut pool = PoolConfig::new("ports");
        pool.range = Some(RangeConfig {
            from: 20_000,
            to: 20_000 + resources - 1,
            prop: "port".into(),
            labels: Default::default(),
            capacity: 1,
        });
        let config = BrokerConfig {
            pools: vec![pool],
            ..BrokerConfig::default()
        };
        let mut broker = Broker::new(config).unwrap();
        // Lease ids as a server makes them: a keyed hash per grant, not a counter.
        if std::env::var_os("BENCH_SEQUENTIAL_IDS").is_none() {
            broker.set_lease_key(LeaseKey::new([0x5a; 16]));
        }
        Self {
            broker,
            clock: Instant::now(),
            codec,
            out: Outputs::default(),
            bytes: 0,
        }
    }

    /// Feeds one input; simulated time moves 20 µs per input, and a tick is sent whenever
    /// the engine's deadline passes (position sweeps, once per simulated second).
    fn feed(&mut self, input: Input) {
        self.clock += Duration::from_micros(20);
        self.out.clear();
        if self.broker.next_deadline().is_some_and(|d| d <= self.clock) {
            self.broker
                .handle_into(self.clock, Input::Tick, &mut self.out);
        }
        self.broker.handle_into(self.clock, input, &mut self.out);
        if self.codec {
            for (_, msg) in &self.out.messages {
                self.bytes += msg.to_json().len();
            }
            for event in &self.out.events {
                self.bytes += serde_json::to_string(event).unwrap().len();
            }
        }
    }

    fn message(&mut self, session: &SessionId, msg: ClientMessage) {
        let msg = if self.codec {
            ClientMessage::parse(&msg.to_json()).unwrap()
        } else {
            msg
        };
        self.feed(Input::Message {
            session: session.clone(),
            msg,
        });
    }

    fn acquire(&mut self, session: &SessionId, id: u64) {
        let msg = ClientMessage::Acquire(Acquire {
            id: RequestId::from(id),
            want: vec![Want::new("ports")],
            wait_ms: None,
            priority: 0,
            note: None,
        });
        self.message(session, msg);
    }

    fn release(&mut self, session: &SessionId, lease: LeaseId) {
        self.message(session, ClientMessage::Release(Release { lease }));
    }

    /// The grants in the last output, in order.
    fn grants(&self) -> Vec<(SessionId, LeaseId)> {
        self.out
            .messages
            .iter()
            .filter_map(|(s, m)| match m {
                ServerMessage::Granted(g) => Some((s.clone(), g.lease.clone())),
                _ => None,
            })
            .collect()
    }
}

/// CPU time this thread has run, if the platform tells (Linux: the first field of
/// `/proc/thread-self/schedstat`, in nanoseconds).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs the closed loop; returns completed cycles per second of wall time, the CPU time per
/// cycle if known, and how many requests wait at the end.
fn run(resources: u64, codec: bool) -> (f64, Option<Duration>, usize) {
    let mut d = Driver::new(resources, codec);
    let sessions: Vec<SessionId> = (0..SESSIONS).map(|i| format!("s{i}").into()).collect();
    for s in &sessions {
        d.feed(Input::Connected {
            session: s.clone(),
            resumable: false,
        });
    }
    let mut holders: VecDeque<(SessionId, LeaseId)> = VecDeque::new();
    let mut next_id = 0u64;
    for s in &sessions {
        d.acquire(s, next_id);
        next_id += 1;
        holders.extend(d.grants());
    }
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let mut cycles = 0u64;
    while start.elapsed() < RUN_FOR {
        for _ in 0..1_000 {
            // The oldest holder releases (its resource goes to the head of the queue, if
            // anyone waits) and asks again (granted at once, or queued at the tail).
            let (session, lease) = holders.pop_front().expect("someone holds something");
            d.release(&session, lease);
            holders.extend(d.grants());
            d.acquire(&session, next_id);
            next_id += 1;
            holders.extend(d.grants());
            cycles += 1;
        }
    }
    let rate = cycles as f64 / start.elapsed().as_secs_f64();
    let cpu = thread_cpu()
        .zip(cpu_start)
        .map(|(end, start)| (end - start).div_f64(cycles as f64));
    let stats = d.broker.stats();
    assert_eq!(stats.leases as u64, resources.min(SESSIONS as u64));
    (rate, cpu, stats.waiting)
}

fn main() {
    println!("summoner-broker engine, closed loop, {SESSIONS} sessions, one thread");
    for (name, resources) in [("uncontended", 1_000), ("contended", 100)] {
        for codec in [false, true] {
            let (rate, cpu, waiting) = run(resources, codec);
            let cpu = cpu.map_or_else(String::new, |cpu| {
                format!(", {:>5.2} µs CPU/cycle", cpu.as_secs_f64() * 1e6)
            });
            println!(
                "{name:>11} {SESSIONS} sessions x {resources:>4} resources, {:<18} {:>9.0} cycles/s \
                 ({:>5.2} µs/cycle{cpu}, {waiting} waiting)",
                if codec {
                    "engine + JSON:"
                } else {
                    "engine only:"
                },
                rate,
                1e6 / rate
            );
        }
    }
}

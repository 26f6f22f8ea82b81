//! Prometheus metrics: the engine's counters and gauges, plus what only the server sees (how
//! long grants waited, how long journal commits take), in the text exposition format.
//!
//! The broker loop owns a [`Metrics`] and updates it after each commit, from the events it
//! just stored, so the numbers describe what is durable. `/metrics` asks the loop for a
//! rendering through the same channel as every other read.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use summoner_broker::{Event, EventKind, Stats};

/// A histogram with fixed buckets, in seconds.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// From "granted at once" to "waited ten minutes for a board".
const WAIT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];

/// From a page-cache write to a slow disk's fsync.
const COMMIT_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, seconds: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// What the server measures itself.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    /// Time from `acquire` to `granted`, per grant.
    pub grant_wait: Histogram,
    /// Duration of each journal commit.
    pub commit: Histogram,
    /// Events stored since start.
    pub events: u64,
    /// Batches of inputs handled since start.
    pub batches: u64,
    /// Inputs handled since start.
    pub inputs: u64,
    /// Connections closed because they did not read their messages.
    pub slow_closed: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            grant_wait: Histogram::new(WAIT_BOUNDS),
            commit: Histogram::new(COMMIT_BOUNDS),
            events: 0,
            batches: 0,
            inputs: 0,
            slow_closed: 0,
        }
    }
}

impl Metrics {
    /// Records a committed batch.
    pub fn committed(&mut self, events: &[Event], took: Duration) {
        self.commit.observe(took.as_secs_f64());
        self.events += events.len() as u64;
        for event in events {
            if let EventKind::Granted { waited_ms, .. } = event.kind {
                self.grant_wait.observe(waited_ms as f64 / 1000.0);
            }
        }
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self, stats: &Stats) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, u64); 9] = [
            ("summoner_grants_total", "Leases granted.", stats.grants),
            (
                "summoner_releases_total",
                "Leases released (by clients, clean disconnects and expired resume graces).",
                stats.releases,
            ),
            (
                "summoner_revokes_total",
                "Leases revoked (by admins, max hold times, removed resources).",
                stats.revokes,
            ),
            (
                "summoner_timeouts_total",
                "Requests whose wait_ms ran out.",
                stats.timeouts,
            ),
            (
                "summoner_cancels_total",
                "Waiting requests cancelled by clients or disconnects.",
                stats.cancels,
            ),
            (
                "summoner_refusals_total",
                "Requests refused (unknown pool, unsatisfiable).",
                stats.refusals,
            ),
            (
                "summoner_journal_events_total",
                "Events written to the journal.",
                self.events,
            ),
            (
                "summoner_loop_inputs_total",
                "Inputs handled by the broker loop.",
                self.inputs,
            ),
            (
                "summoner_slow_connections_closed_total",
                "Connections dropped because they stopped reading their messages.",
                self.slow_closed,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help} Since the server started.");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        }
        gauge(
            &mut out,
            "summoner_queue_depth",
            "Requests waiting.",
            stats.waiting as u64,
        );
        gauge(
            &mut out,
            "summoner_leases",
            "Leases held.",
            stats.leases as u64,
        );
        let _ = writeln!(
            out,
            "# HELP summoner_sessions Sessions, by whether a connection is open for them."
        );
        let _ = writeln!(out, "# TYPE summoner_sessions gauge");
        let _ = writeln!(
            out,
            "summoner_sessions{{state=\"connected\"}} {}",
            stats.sessions_connected
        );
        let _ = writeln!(
            out,
            "summoner_sessions{{state=\"orphaned\"}} {}",
            stats.sessions_orphaned
        );
        let _ = writeln!(
            out,
            "# HELP summoner_slots Resource slots (capacity units), by state."
        );
        let _ = writeln!(out, "# TYPE summoner_slots gauge");
        let _ = writeln!(out, "summoner_slots{{state=\"held\"}} {}", stats.slots_held);
        let _ = writeln!(out, "summoner_slots{{state=\"free\"}} {}", stats.slots_free);
        let _ = writeln!(
            out,
            "summoner_slots{{state=\"total\"}} {}",
            stats.slots_total
        );
        gauge(&mut out, "summoner_pools", "Pools.", stats.pools as u64);
        gauge(
            &mut out,
            "summoner_resources",
            "Resources.",
            stats.resources as u64,
        );
        gauge(
            &mut out,
            "summoner_resources_disabled",
            "Disabled resources.",
            stats.resources_disabled as u64,
        );
        if let Some(rss) = resident_memory_bytes() {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size of the server process.",
                rss,
            );
        }
        self.grant_wait.render(
            &mut out,
            "summoner_grant_wait_seconds",
            "Time from acquire to grant.",
        );
        self.commit.render(
            &mut out,
            "summoner_journal_commit_seconds",
            "Duration of one journal commit (one batch of the broker loop).",
        );
        out
    }
}

/// What the accept loop counts (`connections.rs`). Atomics, because connections come and go
/// on every worker thread, outside the broker loop.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    /// Connections open now, WebSockets included.
    pub open: AtomicU64,
    /// The connection limit in force (`http.max_connections`, lowered to fit the open-files
    /// limit).
    pub limit: AtomicU64,
    /// Connections refused at the limit, with nothing to close to make room.
    pub refused: AtomicU64,
    /// Connections closed, at the limit, to make room for a new one: those that had waited
    /// longest for a request.
    pub shed: AtomicU64,
    /// Connections closed because a request's head or body did not arrive within
    /// `http.request_read_timeout`.
    pub timed_out: AtomicU64,
}

impl ConnectionStats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the exposition text to `out`.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        gauge(
            out,
            "summoner_connections",
            "Connections open, WebSockets included.",
            get(&self.open),
        );
        gauge(
            out,
            "summoner_connections_limit",
            "The most connections open at once (http.max_connections, within the open-files limit).",
            get(&self.limit),
        );
        let counters = [
            (
                "summoner_connections_refused_total",
                "Connections refused at the limit, with none to close to make room.",
                get(&self.refused),
            ),
            (
                "summoner_connections_shed_total",
                "Connections closed at the limit to make room: those waiting longest for a request.",
                get(&self.shed),
            ),
            (
                "summoner_connections_timed_out_total",
                "Connections closed because a request did not arrive within http.request_read_timeout.",
                get(&self.timed_out),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help} Since the server started.");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// The process's resident set, from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut out = String::new();
        h.render(&mut out, "x", "X.");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }
}

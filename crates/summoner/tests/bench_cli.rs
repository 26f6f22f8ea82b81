//! `summoner bench broker` end to end, in every mode, against a real `summoner serve`.
//!
//! These runs are short and check what the bench reports (that cycles happened, that none
//! failed, that the figures are printed), never how fast: speed is measured by running the
//! bench, not by tests (`docs/benchmarks.md`).

mod common;

use common::*;

/// A pool of one resource for the hand-over, and a few ports for the loops.
const CONFIG: &str = r#"
[[pool]]
name = "one"
range = { from = 30000, to = 30000, prop = "port" }
[[pool]]
name = "ports"
range = { from = 20000, to = 20009, prop = "port" }
"#;

/// Runs `summoner bench broker ARGS` against `serve` and returns its stdout.
fn bench(serve: &Serve, args: &[&str]) -> String {
    let out = summoner()
        .args(["bench", "broker", "--server", &serve.url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The number after `prefix` on the line that starts with it, thousands separators removed.
fn count_after(text: &str, prefix: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"));
    let number: String = line[prefix.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no count in {line:?}"))
}

#[test]
fn closed_loop_modes_count_cycles_and_no_failures() {
    let serve = Serve::with_config(CONFIG);
    // More clients than ports: some requests queue, so the wait line is printed too.
    let out = bench(
        &serve,
        &["--clients", "20", "--duration", "200ms", "--pool", "ports"],
    );
    assert!(count_after(&out, "cycles:") >= 20, "{out}");
    assert!(
        out.contains("refused or failed connections: 0; failed cycles: 0"),
        "{out}"
    );
    assert!(out.contains("grant latency: p50 "), "{out}");

    let out = bench(
        &serve,
        &[
            "--clients",
            "3",
            "--duration",
            "200ms",
            "--pool",
            "ports",
            "--reconnect",
        ],
    );
    assert!(count_after(&out, "cycles:") >= 3, "{out}");
    assert!(
        out.contains("refused or failed connections: 0; failed cycles: 0"),
        "{out}"
    );
}

#[test]
fn the_open_loop_starts_cycles_on_schedule() {
    let serve = Serve::with_config(CONFIG);
    let out = bench(
        &serve,
        &[
            "--clients",
            "4",
            "--duration",
            "200ms",
            "--pool",
            "ports",
            "--rate",
            "200",
        ],
    );
    assert!(out.contains("open loop at 200 cycles/s"), "{out}");
    // Every client starts at least its first cycle, and none starts one before it is due:
    // at most rate × duration, plus one per client for the first.
    let cycles = count_after(&out, "cycles:");
    assert!((4..=44).contains(&cycles), "{out}");
    assert!(
        out.contains("refused or failed connections: 0; failed cycles: 0"),
        "{out}"
    );
}

#[test]
fn handover_measures_close_to_grant() {
    let serve = Serve::with_config(CONFIG);
    let out = bench(
        &serve,
        &["--handover", "--pool", "one", "--duration", "200ms"],
    );
    assert!(count_after(&out, "hand-overs:") >= 1, "{out}");
    assert!(out.contains("close to grant: p50 "), "{out}");
    // A killed holder (no close frame) hands over at once too: the bench's sessions are not
    // resumable.
    let out = bench(
        &serve,
        &[
            "--handover",
            "--drop",
            "--pool",
            "one",
            "--duration",
            "200ms",
        ],
    );
    assert!(count_after(&out, "hand-overs:") >= 1, "{out}");
}

#[test]
fn handover_refuses_a_pool_with_more_than_one_resource_free() {
    let serve = Serve::with_config(CONFIG);
    let out = summoner()
        .args(["bench", "broker", "--server", &serve.url])
        .args(["--handover", "--pool", "ports", "--duration", "200ms"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("must have exactly one resource free"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn idle_sessions_report_the_servers_memory() {
    let serve = Serve::with_config(CONFIG);
    let pid = serve.child.id().to_string();
    let out = bench(
        &serve,
        &[
            "--idle",
            "--hold",
            "--clients",
            "5",
            "--pool",
            "ports",
            "--server-pid",
            &pid,
        ],
    );
    assert!(count_after(&out, "connected:") == 5, "{out}");
    assert!(count_after(&out, "leases held:") == 5, "{out}");
    assert!(out.contains("server RSS"), "{out}");
}

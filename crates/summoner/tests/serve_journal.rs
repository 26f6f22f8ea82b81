//! `summoner serve` on a damaged journal: it refuses before saying "serving", names what is
//! wrong and the flag, exits 1; with `--accept-journal-loss` it serves.

mod common;

use common::*;

use std::path::Path;
use std::process::{Child, Stdio};

/// `summoner serve` on port 0 with data in `dir/data`, and its stderr.
fn serve(dir: &Path, extra: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = summoner()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    (child, lines)
}

/// SIGTERM, and the exit code 0 of a graceful stop.
fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_damaged_journal_is_refused_before_serving_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (child, lines) = serve(dir.path(), &[]);
    let serving = wait_for_line(&lines, "serving on http://");
    let url = serving
        .last()
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    // One event in the journal, so that there is something to lose.
    let answer = ureq::post(&format!("{url}/v1/pools/ports/resources/20000/disable"))
        .send_empty()
        .unwrap();
    assert_eq!(answer.status(), 204);
    stop(child);

    std::fs::remove_file(dir.path().join("data/summoner.db")).unwrap();
    let out = summoner()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "off")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("serving"), "{err}");
    let journal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("data/summoner.state")).unwrap(),
    )
    .unwrap();
    insta::assert_snapshot!(
        err.replace(&dir.path().display().to_string(), "[DIR]")
            .replace(journal["journal"].as_str().unwrap(), "[JOURNAL]")
    );

    let (child, lines) = serve(dir.path(), &["--accept-journal-loss"]);
    wait_for_line(&lines, "serving on http://");
    stop(child);
}

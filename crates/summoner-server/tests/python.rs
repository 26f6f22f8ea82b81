//! Another language, another library: the minimal flow from Python's `websockets` client
//! (`tests/python/minimal_flow.py`), against a real server.
//!
//! Needs a Python with `websockets` 13 or newer, found as `common::python` describes
//! (`.ci/run` makes one under `target/pyenv`); without it the test fails at once with the
//! install hint.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, config, pool, python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_minimal_flow() {
    let python = python::with_websockets();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("ports", 1)])).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/minimal_flow.py");
    let url = server.ws_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(&script)
            .arg(&url)
            .arg("ports")
            .output()
            .expect("the python interpreter runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout.trim(), "ok r0");
    server.stop().await.unwrap();
}

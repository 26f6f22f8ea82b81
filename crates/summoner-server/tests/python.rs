//! Another language, another library: the minimal flow from Python's `websockets` client
//! (`tests/python/minimal_flow.py`), against a real server.
//!
//! Needs `python3` with `websockets` (`python3 -m pip install 'websockets>=13'`, which
//! `.ci/run` does).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, config, pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_minimal_flow() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("ports", 1)])).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/minimal_flow.py");
    let url = server.ws_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&script)
            .arg(&url)
            .arg("ports")
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "install the Python client library: python3 -m pip install 'websockets>=13'"
    );
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout.trim(), "ok r0");
    server.stop().await.unwrap();
}

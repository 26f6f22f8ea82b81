//! What `summoner up` says when it cannot do its job: every cause once, the file and the
//! service named, nothing a user would have to decode. Snapshots, so a change of wording is
//! a reviewed change.

mod common;

use common::*;

use std::path::Path;
use std::process::Output;

/// Runs `summoner up -f FILE -- CMD...` in `dir`, with `server` as the broker.
fn up(dir: &Path, spec: &str, server: &str, cmd: &[&str]) -> Output {
    let file = dir.join(".summoner.yml");
    std::fs::write(&file, spec).unwrap();
    summoner()
        .env("SUMMONER_SERVER", server)
        .env_remove("SUMMONER_UNSET_FOR_TEST")
        .args(["up", "-f"])
        .arg(&file)
        .arg("--")
        .args(cmd)
        .output()
        .expect("summoner runs")
}

/// stderr with the parts that change from run to run (the server's port, the temporary
/// directory, how long things took) replaced by names.
fn normalised(out: &Output, dir: &Path, server: &str) -> String {
    let dir = std::fs::canonicalize(dir).unwrap();
    let text = stderr(out)
        .replace(server, "[SERVER]")
        .replace(&dir.display().to_string(), "[DIR]");
    let took = regex::Regex::new(r"\b\d+(\.\d+)?m?s\b").unwrap();
    took.replace_all(&text, "[TOOK]").into_owned()
}

/// A URL where nothing listens: a port bound and closed again.
fn unreachable_server() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn an_unset_variable_names_the_service_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let server = unreachable_server();
    let out = up(
        dir.path(),
        "services:\n  web:\n    run: echo ${SUMMONER_UNSET_FOR_TEST}\n",
        &server,
        &["true"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(normalised(&out, dir.path(), &server));
}

#[test]
fn an_unreachable_broker_is_named_once_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let server = unreachable_server();
    let out = up(
        dir.path(),
        "resources:\n  - pool: ports\nservices:\n  web:\n    run: sleep 100\n",
        &server,
        &["true"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(normalised(&out, dir.path(), &server));
}

#[test]
fn a_service_whose_program_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let server = unreachable_server();
    let out = up(
        dir.path(),
        "services:\n  web:\n    run: [/nonexistent/web-server, --port, \"8080\"]\n",
        &server,
        &["true"],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(normalised(&out, dir.path(), &server));
}

/// A command that does not exist exits 127, as a shell says it, like `summoner lease`.
#[test]
fn a_missing_command_exits_127() {
    let dir = tempfile::tempdir().unwrap();
    let server = unreachable_server();
    let out = up(
        dir.path(),
        "services:\n  web:\n    run: sleep 100\n",
        &server,
        &["/nonexistent/command"],
    );
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    insta::assert_snapshot!(normalised(&out, dir.path(), &server));
}

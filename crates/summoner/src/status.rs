//! `summoner status`: what a server's broker holds, as plain tables (or its raw JSON).
//!
//! Everything comes from the HTTP API (`GET /v1/pools`, `/v1/leases`, `/v1/queue`), read as
//! loose JSON: fields this version does not know are ignored, and missing ones print as
//! blanks, so an older `summoner` still shows a newer server's state.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use summoner_client::ServerUrl;

use crate::cli::StatusArgs;
use crate::connection::{server_url, token};

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let server = server_url(&args.server);
    let url = ServerUrl::parse(&server)?;
    let api = Api::new(&url, token(&args.server));
    let pools = api.get("/v1/pools")?;
    let leases = api.get("/v1/leases")?;
    let queue = api.get("/v1/queue")?;
    if args.json {
        let all = json!({
            "pools": list(&pools, "pools"),
            "leases": list(&leases, "leases"),
            "queue": list(&queue, "queue"),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("JSON values always serialize")
        );
    } else {
        print!("{}", render(&pools, &leases, &queue));
    }
    Ok(ExitCode::SUCCESS)
}

/// A tiny blocking HTTP client for the read-only API.
struct Api {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Api {
    fn new(url: &ServerUrl, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Api {
            base: url.http().to_owned(),
            agent,
            token,
        }
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request.call().map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the summoner server at {}: {e} (is `summoner serve` running \
                 there? Set --server or SUMMONER_SERVER to point elsewhere)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer to GET {url}"))?;
        if !status.is_success() {
            // The API answers errors as `{code, message}`.
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            bail!("GET {url}: {status}: {message}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url} did not answer JSON"))
    }
}

/// The array in `{"key": [...]}`, or the value itself if it is already an array.
fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    let value = value.get(key).unwrap_or(value);
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `k=v,k2=v2` for a labels object.
fn labels(value: &Value) -> String {
    match value.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        None => String::new(),
    }
}

/// `ports:2,host=local` for a `want` list.
fn wants(value: &Value) -> String {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|w| {
            let mut out = text(w, "pool");
            let count = w.get("count").and_then(Value::as_u64).unwrap_or(1);
            if count != 1 {
                let _ = write!(out, ":{count}");
            }
            let labels = labels(w.get("labels").unwrap_or(&Value::Null));
            if !labels.is_empty() {
                out.push(',');
                out.push_str(&labels);
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `850ms`, `12s`, `3m04s`, `2h05m`: an age at a glance.
fn age(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return String::new();
    };
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Aligned columns separated by two spaces, without trailing spaces.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Consecutive free resources of a pool with the same labels.
struct FreeRun {
    pool: String,
    first: String,
    last: String,
    labels: String,
    count: usize,
}

/// Ends a run of free resources: one row per resource when there are only one or two,
/// `first … last` when there are more.
fn flush(run: &mut Option<FreeRun>, rows: &mut Vec<Vec<String>>) {
    let Some(run) = run.take() else { return };
    match run.count {
        1 => rows.push(vec![run.pool, run.first, run.labels, "free".into()]),
        2 => {
            rows.push(vec![
                run.pool.clone(),
                run.first,
                run.labels.clone(),
                "free".into(),
            ]);
            rows.push(vec![run.pool, run.last, run.labels, "free".into()]);
        }
        n => rows.push(vec![
            run.pool,
            format!("{} … {}", run.first, run.last),
            run.labels,
            format!("free ({n})"),
        ]),
    }
}

/// The three tables: pools, resources with their holders, and the queue.
fn render(pools: &Value, leases: &Value, queue: &Value) -> String {
    let leases = list(leases, "leases");
    let lease = |id: &str| leases.iter().find(|l| text(l, "lease") == id);

    let mut summary = Vec::new();
    let mut resources = Vec::new();
    for pool in list(pools, "pools") {
        let name = text(pool, "name");
        let list = pool
            .get("resources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (mut free, mut held, mut disabled) = (0u64, 0u64, 0u64);
        let mut free_run: Option<FreeRun> = None;
        for res in list {
            let capacity = res.get("capacity").and_then(Value::as_u64).unwrap_or(1);
            let enabled = res.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            let holders = res
                .get("holders")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let n = holders.len() as u64;
            held += n;
            if enabled {
                free += capacity.saturating_sub(n);
            } else {
                disabled += 1;
            }
            let state = match (enabled, n, capacity) {
                (false, _, _) => "disabled".to_owned(),
                (true, 0, _) => "free".to_owned(),
                (true, n, 1) if n >= 1 => "held".to_owned(),
                (true, n, c) => format!("held {n}/{c}"),
            };
            let res_name = text(res, "name");
            let res_labels = labels(res.get("labels").unwrap_or(&Value::Null));
            if holders.is_empty() {
                // Runs of free resources with the same labels (a range of 100 ports) show as
                // one row; `--json` lists every one.
                if state == "free"
                    && let Some(run) = free_run.as_mut().filter(|r| r.labels == res_labels)
                {
                    run.last = res_name;
                    run.count += 1;
                    continue;
                }
                flush(&mut free_run, &mut resources);
                if state == "free" {
                    free_run = Some(FreeRun {
                        pool: name.clone(),
                        first: res_name.clone(),
                        last: res_name.clone(),
                        labels: res_labels.clone(),
                        count: 1,
                    });
                } else {
                    resources.push(vec![
                        name.clone(),
                        res_name.clone(),
                        res_labels.clone(),
                        state.clone(),
                    ]);
                }
                continue;
            }
            flush(&mut free_run, &mut resources);
            for holder in holders {
                let id = text(holder, "lease");
                let info = lease(&id);
                resources.push(vec![
                    name.clone(),
                    res_name.clone(),
                    res_labels.clone(),
                    state.clone(),
                    id,
                    text(holder, "session"),
                    info.map(|l| {
                        let mut since = age(l.get("held_ms").and_then(Value::as_u64));
                        if l.get("connected").and_then(Value::as_bool) == Some(false) {
                            since.push_str(" (disconnected)");
                        }
                        since
                    })
                    .unwrap_or_default(),
                    info.map(|l| text(l, "note")).unwrap_or_default(),
                ]);
            }
        }
        flush(&mut free_run, &mut resources);
        summary.push(vec![
            name.clone(),
            list.len().to_string(),
            free.to_string(),
            held.to_string(),
            disabled.to_string(),
            text(pool, "waiting"),
        ]);
    }

    let waiting: Vec<Vec<String>> = list(queue, "queue")
        .iter()
        .map(|w| {
            vec![
                text(w, "position"),
                text(w, "priority"),
                text(w, "session"),
                text(w, "id"),
                wants(w.get("want").unwrap_or(&Value::Null)),
                age(w.get("waited_ms").and_then(Value::as_u64)),
                text(w, "note"),
            ]
        })
        .collect();

    let mut out = String::new();
    out.push_str(&table(
        &["POOL", "RESOURCES", "FREE", "HELD", "DISABLED", "WAITING"],
        &summary,
    ));
    out.push('\n');
    out.push_str(&table(
        &[
            "POOL", "RESOURCE", "LABELS", "STATE", "LEASE", "SESSION", "SINCE", "NOTE",
        ],
        &resources,
    ));
    out.push('\n');
    if waiting.is_empty() {
        out.push_str("QUEUE: empty\n");
    } else {
        out.push_str(&table(
            &[
                "POSITION", "PRIORITY", "SESSION", "ID", "WANTS", "WAITED", "NOTE",
            ],
            &waiting,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_holders_and_the_queue() {
        let pools = json!({"pools": [{
            "name": "boards",
            "resources": [
                {"name": "rpi-1", "labels": {"arch": "arm64"}, "props": {}, "capacity": 1,
                 "enabled": true, "holders": [{"lease": "L1", "session": "abc123"}]},
                {"name": "rpi-2", "labels": {"arch": "arm64"}, "props": {}, "capacity": 1,
                 "enabled": false, "holders": []},
                {"name": "x86-1", "labels": {}, "props": {}, "capacity": 2,
                 "enabled": true, "holders": []},
                {"name": "x86-2", "labels": {}, "props": {}, "capacity": 1,
                 "enabled": true, "holders": []},
                {"name": "x86-3", "labels": {}, "props": {}, "capacity": 1,
                 "enabled": true, "holders": []},
                {"name": "x86-4", "labels": {}, "props": {}, "capacity": 1,
                 "enabled": true, "holders": [{"lease": "L2", "session": "fff000"}]},
            ],
            "waiting": 1,
        }]});
        let leases = json!({"leases": [{
            "lease": "L1", "session": "abc123", "id": 1,
            "resources": [{"pool": "boards", "name": "rpi-1"}],
            "note": "nightly", "connected": true, "held_ms": 65_000,
        }]});
        let queue = json!({"queue": [{
            "session": "def456", "id": 7, "priority": 0, "note": null, "position": 1,
            "want": [{"pool": "boards", "count": 2, "labels": {"arch": "arm64"}}],
            "waited_ms": 3_200,
        }]});
        insta::assert_snapshot!(render(&pools, &leases, &queue), @r"
        POOL    RESOURCES  FREE  HELD  DISABLED  WAITING
        boards  6          4     2     1         1

        POOL    RESOURCE       LABELS      STATE     LEASE  SESSION  SINCE  NOTE
        boards  rpi-1          arch=arm64  held      L1     abc123   1m05s  nightly
        boards  rpi-2          arch=arm64  disabled
        boards  x86-1 … x86-3              free (3)
        boards  x86-4                      held      L2     fff000

        POSITION  PRIORITY  SESSION  ID  WANTS                WAITED  NOTE
        1         0         def456   7   boards:2,arch=arm64  3s
        ");
    }

    #[test]
    fn an_empty_queue_says_so() {
        let out = render(
            &json!({"pools": []}),
            &json!({"leases": []}),
            &json!({"queue": []}),
        );
        assert!(out.ends_with("QUEUE: empty\n"), "{out}");
    }

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(Some(850)), "850ms");
        assert_eq!(age(Some(12_400)), "12s");
        assert_eq!(age(Some(184_000)), "3m04s");
        assert_eq!(age(Some(7_500_000)), "2h05m");
        assert_eq!(age(None), "");
    }
}

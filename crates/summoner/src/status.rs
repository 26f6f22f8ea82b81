//! `summoner status`: what a server's broker holds, as plain tables (or as JSON).
//!
//! Everything comes from the HTTP API (`GET /v1/pools`, `/v1/leases`, `/v1/queue`), read as
//! the server's own answer types ([`summoner_protocol::api`]); fields this version does not
//! know are ignored, so an older `summoner` still shows a newer server's state. The leases
//! and the queue come a page at a time; `status` follows the pages' cursors up to
//! [`MAX_LEASES`] and [`MAX_WAITERS`] and says how many more wait beyond that.
//!
//! Names, labels, props, notes and request ids come from clients, so a table shows them with
//! control characters escaped (see [`shown`]): a note cannot move the cursor, set the
//! terminal's title or hide a row behind a carriage return.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use summoner_client::ServerUrl;
use summoner_protocol::api::{self, ApiError};
use summoner_protocol::{Labels, LeaseId, RequestId, Want};

use crate::cli::StatusArgs;
use crate::connection::{server_url, token};
use crate::terminal::shown;

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let server = server_url(&args.server);
    let url = ServerUrl::parse(&server)?;
    let api = Api::new(&url, token(&args.server));
    let pools: api::Pools = api.get("/v1/pools", &[])?;
    let leases = follow(
        |after| api.page("/v1/leases", after),
        |page: api::Leases| (page.leases, page.total, page.next),
        MAX_LEASES,
    )?;
    let leases = api::Leases {
        leases: leases.items,
        total: leases.total,
        next: None,
    };
    let queue = follow(
        |after| api.page("/v1/queue", after),
        |page: api::Queue| (page.queue, page.total, page.next),
        MAX_WAITERS,
    )?;
    let queue = api::Queue {
        queue: queue.items,
        total: queue.total,
        next: None,
    };
    if args.json {
        /// The three answers in one document.
        #[derive(Serialize)]
        struct All<'a> {
            pools: &'a [api::Pool],
            leases: &'a [api::Lease],
            queue: &'a [api::Waiter],
            /// How many requests wait in all, `queue` showing the first [`MAX_WAITERS`].
            queue_total: u64,
        }
        let all = All {
            pools: &pools.pools,
            leases: &leases.leases,
            queue: &queue.queue,
            queue_total: queue.total,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("the API's types always serialize")
        );
    } else {
        print!("{}", render(&pools, &leases, &queue));
    }
    Ok(ExitCode::SUCCESS)
}

/// The most waiting requests `status` reads: a queue longer than that is summed up.
const MAX_WAITERS: usize = 1_000;

/// The most leases `status` reads (only to show each holder's age and note).
const MAX_LEASES: usize = 10_000;

/// The items of the pages of a listing read, and how many it had in all.
struct Listing<T> {
    items: Vec<T>,
    total: u64,
}

/// Reads a paged listing: `fetch(after)` gets the page after a cursor (the first for
/// `None`), `split` takes a page apart into its items, the listing's total and the next
/// cursor. Stops when the listing ends or once `cap` items are read, so that a long queue
/// costs a bounded amount. An older server answers without `next` (and with a total of 0),
/// which reads as one page.
fn follow<P, T>(
    mut fetch: impl FnMut(Option<&str>) -> anyhow::Result<P>,
    split: impl Fn(P) -> (Vec<T>, u64, Option<String>),
    cap: usize,
) -> anyhow::Result<Listing<T>> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let total = loop {
        let (page, total, next) = split(fetch(after.as_deref())?);
        items.extend(page);
        match next {
            // A cursor that does not move would loop for ever.
            Some(next) if items.len() < cap && after.as_ref() != Some(&next) => {
                after = Some(next);
            }
            _ => break total,
        }
    };
    items.truncate(cap);
    let total = total.max(items.len() as u64);
    Ok(Listing { items, total })
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

    /// A page of a listing, as large as the server makes them.
    fn page<T: DeserializeOwned>(&self, path: &str, after: Option<&str>) -> anyhow::Result<T> {
        let limit = api::Page::MAX_LIMIT.to_string();
        let mut query = vec![("limit", limit.as_str())];
        query.extend(after.map(|after| ("after", after)));
        self.get(path, &query)
    }

    fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url).query_pairs(query.iter().copied());
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
            // The API answers errors as `{code, message}`; anything else is shown as it came,
            // escaped like everything else the server relays.
            let message = serde_json::from_str::<ApiError>(&text).map_or(text, |err| err.message);
            bail!("GET {url}: {status}: {}", shown(&message));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("GET {url} did not answer what summoner status expects"))
    }
}

/// A request id as a cell: a string without its quotes, a number as written.
fn request_id(id: &RequestId) -> String {
    match id {
        RequestId::String(s) => shown(s).into_owned(),
        RequestId::Number(n) => n.to_string(),
    }
}

/// `k=v,k2=v2` for labels.
fn labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{}={}", shown(k), shown(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `ports:2,host=local` for a `want` list.
fn wants(want: &[Want]) -> String {
    want.iter()
        .map(|w| {
            let mut out = shown(&w.pool).into_owned();
            if w.count != 1 {
                let _ = write!(out, ":{}", w.count);
            }
            let labels = labels(&w.labels);
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
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Aligned columns separated by two spaces, without trailing spaces.
///
/// Padding is written out rather than asked of `format!`, whose width argument is a `u16`:
/// a cell of more than 65,535 characters made `{cell:<width$}` panic.
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
        for (cell, &width) in cells.zip(&widths) {
            text.push_str(cell);
            let pad = width.saturating_sub(cell.chars().count()) + 2;
            text.extend(std::iter::repeat_n(' ', pad));
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
fn render(pools: &api::Pools, leases: &api::Leases, queue: &api::Queue) -> String {
    let lease = |id: &LeaseId| leases.leases.iter().find(|l| l.lease == *id);

    let mut summary = Vec::new();
    let mut resources = Vec::new();
    for pool in &pools.pools {
        let name = shown(&pool.name).into_owned();
        let (mut free, mut held, mut disabled) = (0u64, 0u64, 0u64);
        let mut free_run: Option<FreeRun> = None;
        for res in &pool.resources {
            let capacity = u64::from(res.capacity);
            let n = res.holders.len() as u64;
            held += n;
            if res.enabled {
                free += capacity.saturating_sub(n);
            } else {
                disabled += 1;
            }
            let state = match (res.enabled, n, capacity) {
                (false, _, _) => "disabled".to_owned(),
                (true, 0, _) => "free".to_owned(),
                (true, n, 1) if n >= 1 => "held".to_owned(),
                (true, n, c) => format!("held {n}/{c}"),
            };
            let res_name = shown(&res.name).into_owned();
            let res_labels = labels(&res.labels);
            if res.holders.is_empty() {
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
            for holder in &res.holders {
                let info = lease(&holder.lease);
                resources.push(vec![
                    name.clone(),
                    res_name.clone(),
                    res_labels.clone(),
                    state.clone(),
                    shown(holder.lease.as_str()).into_owned(),
                    shown(holder.session.as_str()).into_owned(),
                    info.map(|l| {
                        let mut since = age(l.held_ms);
                        if !l.connected {
                            since.push_str(" (disconnected)");
                        }
                        since
                    })
                    .unwrap_or_default(),
                    info.and_then(|l| l.note.as_deref())
                        .map(|note| shown(note).into_owned())
                        .unwrap_or_default(),
                ]);
            }
        }
        flush(&mut free_run, &mut resources);
        summary.push(vec![
            name,
            pool.resources.len().to_string(),
            free.to_string(),
            held.to_string(),
            disabled.to_string(),
            pool.waiting.to_string(),
        ]);
    }

    let waiting: Vec<Vec<String>> = queue
        .queue
        .iter()
        .map(|w| {
            vec![
                w.position.to_string(),
                w.priority.to_string(),
                shown(w.session.as_str()).into_owned(),
                request_id(&w.id),
                wants(&w.want),
                age(w.waited_ms),
                w.note
                    .as_deref()
                    .map(|note| shown(note).into_owned())
                    .unwrap_or_default(),
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
    let more = queue.total.saturating_sub(queue.queue.len() as u64);
    if more > 0 {
        let _ = writeln!(out, "… and {more} more waiting");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The typed answers, from the JSON a server sends.
    fn answers(pools: Value, leases: Value, queue: Value) -> (api::Pools, api::Leases, api::Queue) {
        (
            serde_json::from_value(pools).unwrap(),
            serde_json::from_value(leases).unwrap(),
            serde_json::from_value(queue).unwrap(),
        )
    }

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
        let (pools, leases, queue) = answers(pools, leases, queue);
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
        let (pools, leases, queue) = answers(
            json!({"pools": []}),
            json!({"leases": []}),
            json!({"queue": []}),
        );
        let out = render(&pools, &leases, &queue);
        assert!(out.ends_with("QUEUE: empty\n"), "{out}");
    }

    #[test]
    fn pages_are_followed_up_to_the_cap_and_the_rest_is_counted() {
        // A listing of 0..25 in pages of 10, as a server would page it.
        let fetch = |after: Option<&str>| -> anyhow::Result<(Vec<u32>, u64, Option<String>)> {
            let from = after.map_or(0, |a| a.parse::<u32>().unwrap() + 1);
            let page: Vec<u32> = (from..25).take(10).collect();
            let next = (from + 10 < 25).then(|| page.last().unwrap().to_string());
            Ok((page, 25, next))
        };
        let all = follow(fetch, |page| page, 100).unwrap();
        assert_eq!(all.items, (0..25).collect::<Vec<_>>());
        assert_eq!(all.total, 25);
        let capped = follow(fetch, |page| page, 15).unwrap();
        assert_eq!(capped.items, (0..15).collect::<Vec<_>>());
        assert_eq!(capped.total, 25);

        // An older server: one page, no total.
        let old = follow(|_| Ok((vec![1, 2], 0, None)), |page| page, 100).unwrap();
        assert_eq!((old.items, old.total), (vec![1, 2], 2));
    }

    #[test]
    fn a_queue_longer_than_shown_says_how_many_more_wait() {
        let (pools, leases, mut queue) = answers(
            json!({"pools": []}),
            json!({"leases": []}),
            json!({"queue": [{
                "session": "def456", "id": 7, "priority": 0, "note": null, "position": 1,
                "want": [{"pool": "boards"}], "waited_ms": 3_200,
            }]}),
        );
        queue.total = 1_500;
        let out = render(&pools, &leases, &queue);
        assert!(out.ends_with("\n… and 1499 more waiting\n"), "{out}");
    }

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_400), "12s");
        assert_eq!(age(184_000), "3m04s");
        assert_eq!(age(7_500_000), "2h05m");
    }

    #[test]
    fn client_strings_reach_the_terminal_escaped() {
        let (pools, leases, queue) = answers(
            json!({"pools": [{
                "name": "bo\u{1b}[2Jards",
                "resources": [
                    {"name": "r\rx", "labels": {"k\n": "v\u{7}"}, "props": {}, "capacity": 1,
                     "enabled": true, "holders": [{"lease": "L\u{9b}1", "session": "abc\u{1b}"}]},
                ],
                "waiting": 1,
            }]}),
            json!({"leases": [{
                "lease": "L\u{9b}1", "session": "abc\u{1b}", "id": 1,
                "resources": [{"pool": "boards", "name": "r"}],
                "note": "\u{1b}]0;pwned\u{7}\r\nfake row\u{202e}", "connected": true,
                "held_ms": 1,
            }]}),
            json!({"queue": [{
                "session": "def", "id": "job\u{1b}[31m", "priority": 0, "position": 1,
                "note": "tab\there\u{7f}",
                "want": [{"pool": "bo\u{1b}ards", "count": 1, "labels": {"a": "\u{1b}"}}],
                "waited_ms": 1,
            }]}),
        );
        let out = render(&pools, &leases, &queue);
        assert!(
            !out.chars()
                .any(|c| (c != '\n' && c.is_control()) || c == '\u{202e}'),
            "a control character reached the output: {out:?}"
        );
        // Only the tables' own line ends: a header and one row for each, and two blank lines.
        assert_eq!(out.lines().count(), 2 + 2 + 2 + 2, "{out}");
        insta::assert_snapshot!(out, @r"
        POOL             RESOURCES  FREE  HELD  DISABLED  WAITING
        bo\u{1b}[2Jards  1          0     1     0         1

        POOL             RESOURCE  LABELS      STATE  LEASE     SESSION    SINCE  NOTE
        bo\u{1b}[2Jards  r\rx      k\n=v\u{7}  held   L\u{9b}1  abc\u{1b}  1ms    \u{1b}]0;pwned\u{7}\r\nfake row\u{202e}

        POSITION  PRIORITY  SESSION  ID             WANTS                  WAITED  NOTE
        1         0         def      job\u{1b}[31m  bo\u{1b}ards,a=\u{1b}  1ms     tab\there\u{7f}
        ");
    }

    #[test]
    fn a_cell_of_any_length_fits() {
        let long = "x".repeat(70_000);
        let (pools, leases, queue) = answers(
            json!({"pools": [{"name": "p", "waiting": 0, "resources": [
                {"name": long, "labels": {}, "props": {}, "capacity": 1, "enabled": false,
                 "holders": []},
                {"name": "short", "labels": {}, "props": {}, "capacity": 1, "enabled": false,
                 "holders": []},
            ]}]}),
            json!({"leases": []}),
            json!({"queue": []}),
        );
        let out = render(&pools, &leases, &queue);
        let rows: Vec<&str> = out.lines().skip(3).take(3).collect();
        assert!(rows[1].contains(&long));
        // The columns after the long one still line up.
        let state_at = |row: &str| row.find("disabled").unwrap();
        assert_eq!(state_at(rows[1]), state_at(rows[2]));
        assert_eq!(rows[0].find("STATE").unwrap(), state_at(rows[1]));
    }
}

//! The floor under the broker's figures: a WebSocket server on the same stack as
//! `summoner serve` (tokio, tungstenite, mimalloc) that answers `summoner bench broker`'s
//! `acquire` with a canned `granted` and its `release` with `released` at once: no engine, no
//! journal, no JSON parsing. What it reaches on a machine is what the WebSocket layer and the
//! kernel allow there with nothing else to do, so the broker's own cost is its distance from
//! this.
//!
//! ```text
//! cargo run --release -p summoner-server --example floor -- 127.0.0.1:17879 [direct|hub] &
//! summoner bench broker --server http://127.0.0.1:17879 --clients 1000 --duration 10s
//! ```
//!
//! `direct` (the default) answers in the connection's own task. `hub` routes every frame
//! through one central task and the answer back through a per-connection channel, as the
//! broker's loop does, which shows what that routing costs by itself.
//!
//! This is a measuring aid for `docs/benchmarks.md`, not part of the server.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What a connection tells the central task in `hub` mode.
enum Command {
    Connect(u64, mpsc::Sender<String>),
    Frame { conn: u64, acquire: bool },
}

fn answer(acquire: bool, n: u64) -> String {
    if acquire {
        format!(
            r#"{{"type":"granted","id":{n},"lease":"l-{n}","resources":[{{"pool":"ports","name":"20000","labels":{{}},"props":{{"port":20000}}}}]}}"#
        )
    } else {
        format!(r#"{{"type":"released","lease":"l-{n}"}}"#)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:17879".to_owned());
    let hub = match args.next().as_deref() {
        None | Some("direct") => false,
        Some("hub") => true,
        Some(other) => {
            eprintln!("floor: unknown mode `{other}` (direct or hub)");
            std::process::exit(2);
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(&addr, hub));
}

async fn run(addr: &str, hub: bool) {
    let (to_hub, mut commands) = mpsc::channel::<Command>(16 * 1024);
    tokio::spawn(async move {
        let mut conns = HashMap::new();
        let mut batch = Vec::new();
        let mut n = 0;
        while commands.recv_many(&mut batch, 4096).await > 0 {
            for command in batch.drain(..) {
                match command {
                    Command::Connect(conn, outbox) => {
                        conns.insert(conn, outbox);
                    }
                    Command::Frame { conn, acquire } => {
                        n += 1;
                        if let Some(outbox) = conns.get(&conn) {
                            let _ = outbox.try_send(answer(acquire, n));
                        }
                    }
                }
            }
        }
    });
    let listener = TcpListener::bind(addr).await.expect("binding the address");
    println!("floor ({}) on {addr}", if hub { "hub" } else { "direct" });
    for conn in 0.. {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let to_hub = to_hub.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let config = WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(0);
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let welcome = r#"{"type":"welcome","session":"s","protocol":1}"#;
            if ws.send(Message::text(welcome)).await.is_err() {
                return;
            }
            let (outbox, mut inbox) = mpsc::channel::<String>(1024);
            if to_hub.send(Command::Connect(conn, outbox)).await.is_err() {
                return;
            }
            let mut n = 0;
            loop {
                tokio::select! {
                    biased;
                    frame = ws.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let Message::Text(text) = frame else { continue };
                        let acquire = text.as_str().contains(r#""acquire""#);
                        if hub {
                            if to_hub.send(Command::Frame { conn, acquire }).await.is_err() {
                                break;
                            }
                        } else {
                            n += 1;
                            if ws.send(Message::text(answer(acquire, n))).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(text) = inbox.recv() => {
                        if ws.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

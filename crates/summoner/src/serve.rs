//! `summoner serve`: the broker server, until SIGINT or SIGTERM.
//!
//! The config comes from `--config`, else `./summoner.toml` if there is one, else the
//! built-in defaults (127.0.0.1:7878, data in `.summoner/`, a pool `ports` of 100 ports);
//! `--listen` and `--data-dir` override it. Logs go to stderr through `tracing` (filtered by
//! `RUST_LOG`, `info` by default).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use summoner_server::ServerConfig;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "summoner.toml";

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut config = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    config.accept_journal_loss = args.accept_journal_loss;
    // Again, after the overrides: `--listen 0.0.0.0:7878` needs a token as much as the file's
    // `listen` does.
    config.check().context("invalid configuration")?;
    let nofile = crate::limits::raise_nofile_limit();
    if nofile < 4096 {
        say(&format!(
            "warning: the open-files limit is {nofile} and every session holds one; \
             raise it (ulimit -Hn) to serve more sessions"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let data_dir = config.data_dir.clone();
        // Journal checks and restore happen here; their refusals are not preceded by a
        // "serving" line that would be a lie.
        let server = summoner_server::Server::start(listener, config)
            .await
            .context("cannot start the server")?;
        let addr = server.local_addr();
        let shutdown = shutdown_signal();
        say(&format!(
            "serving on http://{addr} (leases at ws://{addr}/v1/lease), data in {}",
            data_dir.display()
        ));
        server.run(shutdown).await.context("the server stopped")?;
        say("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// `path`, else `./summoner.toml` if it exists, else the defaults.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<ServerConfig> {
    let path: Option<PathBuf> = match path {
        Some(path) => Some(path.to_owned()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
    };
    match path {
        // The error already names the file, line and column.
        Some(path) => Ok(ServerConfig::load(&path)?),
        None => Ok(ServerConfig::default()),
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed at the call, not when the
/// future is first polled: a signal sent as soon as "serving" is printed must stop the server
/// gracefully rather than find the default action (exit at once) still in place.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = signals else {
            say("cannot install signal handlers; stop the server with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        say("stopping; held leases are kept for their holders to resume");
    }
}

/// A status line on stderr. A server outlives the terminal it was started from, so a closed
/// stderr must not bring it down (`eprintln!` would panic).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "summoner: {line}");
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

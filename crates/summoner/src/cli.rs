//! Command-line arguments (clap derive). Kept apart from behaviour so `--help` reads as the
//! reference of every flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
// Every flag that takes a duration reads it with the grammar of `summoner.toml` and
// `.summoner.yml`, so `--wait 30s` means what `timeout: 30s` means.
use summoner_protocol::duration::parse_duration;

/// Exit code for "it did not work": an invalid file, a service that failed, a bad
/// argument value that clap could not catch. Usage errors from clap itself exit with 2.
pub const EXIT_FAILURE: u8 = 1;

/// Summon the processes and the resources your tests need.
#[derive(Debug, Parser)]
#[command(name = "summoner", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a .summoner.yml file and print every error with its line and column.
    Check(CheckArgs),
    /// Start services from a .summoner.yml file, wait until each is ready, and keep them up
    /// until Ctrl-C (or run a command against them, then stop them).
    Up(UpArgs),
    /// Lease resources from a summoner server, then run a command with them (or print the
    /// lease as JSON and hold it until stdin closes).
    Lease(LeaseArgs),
    /// Show a summoner server's pools, resources, holders and queue.
    Status(StatusArgs),
    /// Measure a running summoner server.
    Bench(BenchArgs),
    /// Run the broker server: leases over WebSocket at /v1/lease, the HTTP API, metrics.
    Serve(ServeArgs),
    /// Apply the journal's database migrations and exit (`serve` also does this at start).
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file to check.
    #[arg(short = 'f', long = "file", default_value = ".summoner.yml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The file that describes the services.
    #[arg(short = 'f', long = "file", default_value = ".summoner.yml")]
    pub file: PathBuf,

    /// Do not show the services' output (it is still shown when one of them fails).
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Services to start, with everything they depend on (default: all).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    /// A command to run once every service is ready; summoner then stops the services and
    /// exits with the command's exit code.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// Where to lease the file's `resources:` from.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Do not reconnect and resume if the connection to the server drops: the file's
    /// resources then end with the connection however it ends (a network failure, a server
    /// restart, this process stopped), with no resume grace. A process that dies, even by
    /// SIGKILL, frees them at once either way, unless the server has
    /// `dropped_connection = "keep"`.
    #[arg(long)]
    pub no_resume: bool,
}

/// How to reach a summoner server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's URL [default: $SUMMONER_SERVER, else http://127.0.0.1:7878].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// The token to authenticate with [default: $SUMMONER_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Give up (exit 1) if the lease is not granted within this time, e.g. `30s`, `5m` or
    /// `1m30s` (a duration as in every summoner file: see "Durations" in docs/spec.md)
    /// [default: wait as long as it takes].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<std::time::Duration>,

    /// Higher priorities are served first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub priority: i32,

    /// Free text shown with the lease on the server (a job URL, your name).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// Do not reconnect and resume if the connection drops: the lease then ends with the
    /// connection however it ends (a network failure, a server restart, this process
    /// stopped), with no resume grace. A process that dies, even by SIGKILL, frees its lease
    /// at once either way, unless the server has `dropped_connection = "keep"`.
    #[arg(long)]
    pub no_resume: bool,

    /// What to lease, all at once: `POOL[:COUNT][,KEY=VALUE...]`, e.g. `ports:2` or
    /// `boards,arch=arm64`.
    #[arg(value_name = "SPEC", required = true, value_parser = summoner_ci::job::parse_want)]
    pub specs: Vec<summoner_client::Want>,

    /// The command to run with the lease in its environment; summoner releases the lease
    /// when it exits and exits with its code.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Print the server's JSON (pools, leases, queue) instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Closed-loop acquire/release load on a broker (or, with --idle, N held sessions).
    Broker(BenchBrokerArgs),
}

#[derive(Debug, Args)]
pub struct BenchBrokerArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Concurrent clients, each with its own connection.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub clients: usize,

    /// How long to measure (after every client is connected), e.g. `10s` or `2m` (see
    /// "Durations" in docs/spec.md).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,

    /// Open loop: start this many cycles per second in all, spread evenly over the clients
    /// and in time, instead of each client starting its next cycle as soon as the last one
    /// ends. Grant latency then counts from when a cycle was due, so a server that falls
    /// behind shows it.
    #[arg(long, value_name = "CYCLES_PER_SEC", conflicts_with_all = ["reconnect", "idle", "handover"])]
    pub rate: Option<f64>,

    /// Open a new connection for every cycle (connect, acquire, release, close).
    #[arg(long, conflicts_with = "idle")]
    pub reconnect: bool,

    /// Measure the hand-over instead: how long a waiting client waits for the resource
    /// after its holder closes the connection (one holder and one waiter at a time, for
    /// --duration; --pool must have exactly one resource free).
    #[arg(long, conflicts_with_all = ["reconnect", "idle"])]
    pub handover: bool,

    /// With --handover: the holder drops its TCP connection without a WebSocket close
    /// frame, as a killed process does, instead of closing it.
    #[arg(long, requires = "handover")]
    pub drop: bool,

    /// The pool to lease from.
    #[arg(long, value_name = "POOL", default_value = "ports")]
    pub pool: String,

    /// Open N sessions that just hold, then report the memory used (server and bench).
    #[arg(long)]
    pub idle: bool,

    /// With --idle: each idle session also holds one lease from --pool.
    #[arg(long, requires = "idle")]
    pub hold: bool,

    /// The server's process id, to read its RSS from /proc [default: from its /metrics].
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Worker threads for the bench's runtime [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file [default: ./summoner.toml if it exists, else built-in defaults].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The address to listen on, overriding the file's `listen` (e.g. 127.0.0.1:7878).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// Where the journal lives, overriding the file's `data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Start even though the journal was found damaged or gone back in time (a missing,
    /// emptied, rolled-back or replaced summoner.db), which `serve` otherwise refuses: keep
    /// what is left, and issue every sequence number and lease id above those issued before.
    /// For this start only.
    #[arg(long)]
    pub accept_journal_loss: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The config file whose `data_dir` to migrate [default: ./summoner.toml if it exists].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The data directory to migrate, overriding the config's `data_dir` [default: .summoner].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

//! The `summoner` command line: one binary for the three engines.
//!
//! This file only parses arguments and maps outcomes to exit codes; each subcommand lives
//! in a module named after it.

mod bench;
mod check;
mod cli;
mod connection;
mod console;
mod job;
mod lease;
mod limits;
mod migrate;
mod serve;
mod status;
mod terminal;
mod up;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the broker server allocates and frees a few small
/// buffers per message (frames, parsed messages, engine outputs, events), often on another
/// thread than the one that allocated them, and glibc's allocator cost about 15 % of its CPU
/// (`docs/server.md`, Performance). Chosen here, in the binary, so the library crates leave
/// the choice to whoever links them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Up(args) => up::run(args),
        Command::Lease(args) => lease::run(args),
        Command::Status(args) => status::run(&args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Migrate(args) => migrate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // anyhow's alternate form prints the whole chain of causes on one line each.
            eprintln!("summoner: error: {err:#}");
            ExitCode::from(cli::EXIT_FAILURE)
        }
    }
}

//! `summoner lease`: lease resources from a server, then run a command with them in its
//! environment (or print the lease and hold it until stdin closes).
//!
//! A front end over the job runner (`summoner_ci::job`), with nothing to start. The lease
//! lives on this process's WebSocket connection, so it ends with the process whatever
//! happens: an explicit release when the command exits or on Ctrl-C, a clean close
//! otherwise, and, if the process is killed outright, the server seeing its socket closed.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use summoner_ci::job::{Job, LeaseRequest, Release, Work};

use crate::cli::LeaseArgs;
use crate::connection;
use crate::console::Console;

pub fn run(args: LeaseArgs) -> anyhow::Result<ExitCode> {
    let hold = args.command.is_empty();
    let work = if hold {
        Work::Hold {
            until: Some(stdin_closed()),
        }
    } else {
        Work::Command {
            argv: args.command,
            sigint_from_terminal: std::io::stdin().is_terminal(),
        }
    };
    let root = std::env::current_dir().context("finding the current directory")?;
    let job = Job::new(root, work)
        .lease(LeaseRequest {
            wants: args.specs,
            note: args.note,
            wait: args.wait,
            priority: args.priority,
        })
        .broker(connection::broker(&args.server, !args.no_resume));
    let mut console = Console::new(&[], false);
    if hold {
        console = console.print_grant();
    }
    crate::job::run(job, console)
}

/// Resolves when stdin reaches its end (or cannot be read), which is how a script says
/// "I am done with the lease" without knowing summoner's pid.
fn stdin_closed() -> Release {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // A plain thread: read(2) on stdin cannot be cancelled, and the process exits without
    // waiting for it.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    Box::pin(async move {
        let _ = rx.await;
    })
}

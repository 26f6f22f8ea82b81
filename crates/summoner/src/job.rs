//! Running a job from the terminal: the runtime, the one signal stack, and the one mapping
//! from a job's outcome to summoner's exit code. `summoner up` and `summoner lease` only
//! describe the job and the console.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use summoner_ci::job::{Job, Signals};
use summoner_proc::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::console::Console;

/// Runs `job` to its end with `console` watching, and returns the exit code: the command's
/// own, `128+N` after signal N, 127/126 for a command that cannot run, 1 for a failure.
pub fn run(job: Job, console: Console) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let console = Arc::new(console);
    let outcome = runtime.block_on(async {
        // Signals are ours from the start, so a Ctrl-C while leasing or starting is handled
        // (the request withdrawn, the services stopped) rather than killing summoner.
        let signals = forward_signals().context("installing signal handlers")?;
        anyhow::Ok(job.run(console.clone(), signals).await)
    })?;
    console.outcome(&outcome);
    // A start interrupted by a signal is still finishing on the blocking pool, and a stdin
    // watcher may be blocked in read(2); neither is waited for: once this process exits,
    // each service's shim kills what is left of its group.
    runtime.shutdown_background();
    Ok(ExitCode::from(outcome.exit_code()))
}

/// SIGINT, SIGTERM and SIGHUP, passed on to the job as they arrive.
fn forward_signals() -> std::io::Result<Signals> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = int.recv() => Signal::SIGINT,
                _ = term.recv() => Signal::SIGTERM,
                _ = hup.recv() => Signal::SIGHUP,
            };
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

//! `summoner up`: start services from a spec, wait until each is ready, then either run a
//! command against them or hold them until Ctrl-C/SIGTERM, and stop them all.
//!
//! A front end over the job runner (`summoner_ci::job`): this module reads the file and
//! the flags and describes the job; leasing, starting, signals and stopping are the
//! runner's.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use summoner_ci::job::{Job, Work};
use summoner_ci::spec::Spec;

use crate::cli::{EXIT_FAILURE, UpArgs};
use crate::connection;
use crate::console::Console;

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let spec = match Spec::load(&args.file) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    let hold = args.command.is_empty();
    let work = if hold {
        Work::Hold { until: None }
    } else {
        Work::Command {
            argv: args.command.clone(),
            sigint_from_terminal: std::io::stdin().is_terminal(),
        }
    };
    let job = Job::from_spec(&spec, &args.services, spec_root(&args.file), work)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if job.services().is_empty() {
        bail!("{} defines no services to start", args.file.display());
    }
    let mut lease = job.lease_request().clone();
    lease.note = Some(format!("summoner up -f {}", args.file.display()));
    let job = job
        .lease(lease)
        .broker(connection::broker(&args.server, !args.no_resume));
    let names: Vec<String> = job.services().iter().map(|s| s.name.clone()).collect();
    let mut console = Console::new(&names, args.quiet);
    if hold {
        console = console.hold_hint();
    }
    crate::job::run(job, console)
}

/// The directory relative paths in the spec are taken from: the file's own directory.
fn spec_root(file: &Path) -> std::path::PathBuf {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

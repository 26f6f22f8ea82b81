//! `summoner check`: validate a build spec without running anything.

use std::process::ExitCode;

use summoner_ci::spec::Spec;

use crate::cli::{CheckArgs, EXIT_FAILURE};

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    match Spec::load(&args.file) {
        Ok(spec) => {
            println!(
                "{}: ok ({} service{}, {} step{}, {} resource request{})",
                args.file.display(),
                spec.services.len(),
                plural(spec.services.len()),
                spec.steps.len(),
                plural(spec.steps.len()),
                spec.resources.len(),
                plural(spec.resources.len()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            // One error per line, `file:line:col: message`, the form editors and CI log
            // viewers turn into links.
            eprintln!("{errors}");
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

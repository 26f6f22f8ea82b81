//! The terminal as a job observer: what `summoner up` and `summoner lease` print while a job
//! runs, and how its end is told.
//!
//! Everything goes to stderr, so that `summoner up -- CMD | tool` hands `tool` nothing but
//! the command's own output (`summoner lease` without a command prints the grant on
//! stdout, on purpose). Colours are used only when stderr is a terminal (and `NO_COLOR` is
//! unset), so logs captured by CI stay plain text.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use summoner_ci::job::{JobError, JobEvent, JobObserver, Outcome};

use crate::connection;
use crate::terminal::{shown, shown_lines};

/// ANSI colours for service prefixes, picked in turn.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Prints a job's events; one instance per run.
#[derive(Debug)]
pub struct Console {
    width: usize,
    colours: HashMap<String, &'static str>,
    colour: bool,
    quiet: bool,
    /// Print the grant as JSON on stdout when it comes (`summoner lease` without a command).
    print_grant: bool,
    /// Say how to stop once everything is ready (when the job holds until a signal).
    hold_hint: bool,
}

impl Console {
    /// A console for a job whose services are `names`.
    pub fn new(names: &[String], quiet: bool) -> Self {
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Console {
            width: names.iter().map(|n| n.len()).max().unwrap_or(0),
            colours: names
                .iter()
                .zip(COLOURS.iter().cycle())
                .map(|(n, c)| (n.clone(), *c))
                .collect(),
            colour,
            quiet,
            print_grant: false,
            hold_hint: false,
        }
    }

    /// Prints the grant as JSON on stdout when it comes.
    pub fn print_grant(mut self) -> Self {
        self.print_grant = true;
        self
    }

    /// Says "press Ctrl-C to stop" once the services are ready.
    pub fn hold_hint(mut self) -> Self {
        self.hold_hint = true;
        self
    }

    /// A status line from summoner itself. What it quotes from servers and clients (names,
    /// reasons, error messages) may hold control characters: each line is escaped, so only
    /// summoner's own line breaks reach the terminal.
    pub fn status(&self, text: &str) {
        let text = shown_lines(text);
        let line = if self.colour {
            format!("\x1b[1msummoner:\x1b[0m {text}")
        } else {
            format!("summoner: {text}")
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Tells how the job ended, when there is something to tell (a failure, an
    /// interruption); a command's own exit needs no words.
    pub fn outcome(&self, outcome: &Outcome) {
        match outcome {
            // The reason was shown, escaped, when the lease ended.
            Outcome::Failed(JobError::LeaseEnded { .. }) => {
                self.status("error: the job cannot go on without its lease");
            }
            Outcome::Failed(err) => {
                self.status(&format!("error: {}", err.report()));
                if let Some(hint) = connection::hint(err) {
                    self.status(&format!("({hint})"));
                }
            }
            Outcome::Interrupted(signal) => {
                self.status(&format!(
                    "interrupted by {signal}; stopped what had started"
                ));
            }
            Outcome::Steps {
                failed: Some((_, name, status)),
                ..
            } => self.status(&format!("error: step \"{name}\" {status}")),
            Outcome::Held | Outcome::Command(_) | Outcome::Steps { failed: None, .. } => {}
        }
    }

    fn prefix(&self, service: &str) -> String {
        let padded = format!("{service:<width$} |", width = self.width);
        match (self.colour, self.colours.get(service)) {
            (true, Some(c)) => format!("\x1b[{c}m{padded}\x1b[0m"),
            _ => padded,
        }
    }
}

impl JobObserver for Console {
    fn event(&self, event: JobEvent) {
        match event {
            JobEvent::Leasing { server, wants } => {
                self.status(&format!("leasing {} from {server}", wants.join(" ")));
            }
            JobEvent::Queued { position } => {
                self.status(&format!("waiting: position {position} in the queue"));
            }
            JobEvent::Leased {
                lease,
                resources,
                grant,
            } => {
                // Names come from the server's config or its admin API: one line each.
                let resources: Vec<_> = resources.iter().map(|r| shown(r)).collect();
                self.status(&format!(
                    "leased {} (lease {})",
                    resources.join(", "),
                    shown(&lease)
                ));
                if self.print_grant {
                    let text =
                        serde_json::to_string_pretty(&grant).expect("a grant always serializes");
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "{text}");
                    let _ = stdout.flush();
                }
            }
            JobEvent::ServiceReady { service, took } => {
                self.status(&format!("{service} is ready ({})", format_took(took)));
            }
            JobEvent::ServiceOutput { service, line, .. } => {
                if !self.quiet {
                    // One write per line, under the lock, so lines of different services
                    // never mix.
                    let _ = writeln!(std::io::stderr().lock(), "{} {line}", self.prefix(&service));
                }
            }
            JobEvent::ServicesReady { count, took } => {
                self.status(&format!(
                    "{count} service{} ready in {}",
                    if count == 1 { "" } else { "s" },
                    format_took(took)
                ));
                if self.hold_hint {
                    self.status("press Ctrl-C to stop");
                }
            }
            JobEvent::StepStarted { name, .. } => self.status(&format!("step \"{name}\"")),
            JobEvent::StepOutput { line, .. } => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            JobEvent::StepEnded {
                name, status, took, ..
            } => self.status(&format!(
                "step \"{name}\" {status} in {}",
                format_took(took)
            )),
            JobEvent::Stopping => self.status("stopping services"),
            JobEvent::StopUnclean { service, status } => {
                self.status(&format!("{service} did not stop cleanly: {status}"));
            }
            JobEvent::Signal { signal } => self.status(&format!("received {signal}")),
            JobEvent::Warning { message } => self.status(&format!("warning: {message}")),
            // An admin's or the server's free text: escaped whole, line breaks too.
            JobEvent::LeaseEnded { reason } => {
                self.status(&format!("the lease ended: {}", shown(&reason)));
            }
            // Told by the outcome or by a warning, whichever the job makes of it.
            JobEvent::ServiceExited { .. } => {}
        }
    }
}

/// Durations as people read them in a log: `850ms`, `1.24s`.
pub fn format_took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_took(Duration::from_micros(850_400)), "850ms");
        assert_eq!(format_took(Duration::from_millis(1240)), "1.24s");
        assert_eq!(format_took(Duration::ZERO), "0ms");
    }
}

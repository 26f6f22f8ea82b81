//! What `summoner up` prints: the services' output, prefixed with their names, and a line
//! per service as it becomes ready.
//!
//! Everything goes to stderr, so that `summoner up -- CMD | tool` hands `tool` nothing but
//! the command's own output. Colours are used only when stderr is a terminal (and
//! `NO_COLOR` is unset), so logs captured by CI stay plain text.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::time::Duration;

use summoner_proc::{ExitStatus, Observer, Stream};

/// What the console reports back to the command's main loop.
#[derive(Debug)]
pub enum Notice {
    /// A service's main process ended on its own, after it was ready.
    Exited {
        service: String,
        status: ExitStatus,
        /// The service's last lines of output, to say why it died.
        tail: Vec<String>,
    },
}

/// ANSI colours for service prefixes, picked in turn.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Prints service events; one instance is shared by every executor of a run.
#[derive(Debug)]
pub struct Console {
    width: usize,
    colours: HashMap<String, &'static str>,
    colour: bool,
    quiet: bool,
    notices: Mutex<Sender<Notice>>,
    /// The last lines of each service, kept even when `quiet`, for error reports.
    tails: Mutex<HashMap<String, VecDeque<String>>>,
}

/// How many lines of a dead service's output are shown.
const TAIL_LINES: usize = 20;

impl Console {
    pub fn new(names: &[String], quiet: bool, notices: Sender<Notice>) -> Self {
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
            notices: Mutex::new(notices),
            tails: Mutex::new(HashMap::new()),
        }
    }

    /// A status line from summoner itself.
    pub fn status(&self, text: &str) {
        let line = if self.colour {
            format!("\x1b[1msummoner:\x1b[0m {text}")
        } else {
            format!("summoner: {text}")
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn prefix(&self, service: &str) -> String {
        let padded = format!("{service:<width$} |", width = self.width);
        match (self.colour, self.colours.get(service)) {
            (true, Some(c)) => format!("\x1b[{c}m{padded}\x1b[0m"),
            _ => padded,
        }
    }
}

impl Observer for Console {
    fn line(&self, service: &str, _stream: Stream, line: &str) {
        if let Ok(mut tails) = self.tails.lock() {
            let tail = tails.entry(service.to_string()).or_default();
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
        }
        if self.quiet {
            return;
        }
        // One write per line, under the lock, so lines of different services never mix.
        let _ = writeln!(std::io::stderr().lock(), "{} {line}", self.prefix(service));
    }

    fn ready(&self, service: &str, took: Duration) {
        self.status(&format!("{service} is ready ({})", format_took(took)));
    }

    fn exited(&self, service: &str, status: ExitStatus) {
        let tail = self
            .tails
            .lock()
            .ok()
            .and_then(|tails| tails.get(service).map(|t| t.iter().cloned().collect()))
            .unwrap_or_default();
        let notice = Notice::Exited {
            service: service.to_string(),
            status,
            tail,
        };
        // The receiver is gone only while summoner is already shutting down.
        let _ = self.notices.lock().map(|tx| tx.send(notice));
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

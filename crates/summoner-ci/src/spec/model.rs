//! The validated build spec: what `summoner up`, `summoner run` and the CI server consume.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use summoner_proc::regex::Regex;
use summoner_proc::{Signal, StatusPattern};

use super::error::{ClosureError, SpecError, SpecErrors};
use super::template::Template;
use super::when::When;
use super::{graph, validate};

/// A parsed and validated `.summoner.yml`.
///
/// Every section is optional; `Spec::default()` is the empty spec (what an empty file or
/// `{}` parses to).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// Environment for every service and step, in file order.
    pub env: Vec<(String, Template)>,
    /// Resources to lease from the broker for the job.
    pub resources: Vec<ResourceReq>,
    /// Services, in file order. Names are unique and dependencies acyclic.
    pub services: Vec<ServiceSpec>,
    /// Steps, in the order they run.
    pub steps: Vec<Step>,
    /// When the CI server builds this spec.
    pub when: When,
}

/// One item of `resources:`: `count` resources from `pool` whose labels match `labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceReq {
    /// The broker pool to lease from.
    pub pool: String,
    /// How many resources; at least 1.
    pub count: u32,
    /// Labels a resource must carry (all of them).
    pub labels: BTreeMap<String, String>,
}

/// One entry of `services:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The key under `services:`.
    pub name: String,
    /// What to run.
    pub run: Command,
    /// How to tell the service is ready.
    pub ready: ReadySpec,
    /// Start timeout; `None` leaves the engine's default (60 s).
    pub timeout: Option<Duration>,
    /// Extra environment, in file order.
    pub env: Vec<(String, Template)>,
    /// Working directory, relative to the repository root.
    pub cwd: Option<Template>,
    /// The signal stop sends, one of those a service may be stopped with (see
    /// `docs/spec.md`); `None` means SIGTERM.
    pub stop_signal: Option<Signal>,
    /// Time between the stop signal and SIGKILL; `None` means 10 s.
    pub stop_grace: Option<Duration>,
    /// Exit codes that count as success; `None` means `[0]`.
    pub exit_codes: Option<Vec<i32>>,
    /// Services that must be ready before this one starts, as written (duplicates removed).
    pub depends_on: Vec<String>,
}

/// A command: a string for `sh -c`, or a list for a direct argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with `sh -c`.
    Shell(Template),
    /// Run directly, no shell: the first item is the program.
    Argv(Vec<Template>),
}

/// How a service's readiness is detected.
///
/// The regexes are compiled while the file is read, so a service never fails to launch
/// over a pattern. Two readiness checks are equal when they are written the same: regexes
/// compare by their pattern text.
#[derive(Debug, Clone, Default)]
pub enum ReadySpec {
    /// Ready as soon as it is started.
    #[default]
    None,
    /// A line of stdout or stderr matches this regex (unanchored).
    Output(Regex),
    /// A TCP connection to `HOST:PORT` succeeds.
    Tcp(Template),
    /// An HTTP request succeeds.
    Http {
        /// The URL to request.
        url: Template,
        /// What the whole status code must match; `None` means `2..|3..`.
        status: Option<StatusPattern>,
        /// Request method, upper case; `None` means GET.
        method: Option<String>,
        /// Substring the response body must contain.
        body: Option<String>,
    },
    /// A Unix socket at this path accepts a connection.
    Unix(Template),
    /// This file exists.
    File(Template),
    /// This probe command exits 0.
    Cmd(Command),
    /// The process itself exits 0 (a one-shot task such as a migration).
    Exit,
}

impl PartialEq for ReadySpec {
    fn eq(&self, other: &ReadySpec) -> bool {
        use ReadySpec::*;
        match (self, other) {
            (None, None) | (Exit, Exit) => true,
            (Output(a), Output(b)) => a.as_str() == b.as_str(),
            (Tcp(a), Tcp(b)) | (Unix(a), Unix(b)) | (File(a), File(b)) => a == b,
            (Cmd(a), Cmd(b)) => a == b,
            (
                Http {
                    url,
                    status,
                    method,
                    body,
                },
                Http {
                    url: url_b,
                    status: status_b,
                    method: method_b,
                    body: body_b,
                },
            ) => url == url_b && status == status_b && method == method_b && body == body_b,
            // Spelled out rather than `_`, so that a new kind cannot be forgotten here.
            (None | Exit | Output(_) | Tcp(_) | Unix(_) | File(_) | Cmd(_) | Http { .. }, _) => {
                false
            }
        }
    }
}

impl Eq for ReadySpec {}

/// One entry of `steps:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The `name:` key, or `step N` (1-based) when absent.
    pub name: String,
    /// What to run.
    pub run: Command,
    /// Time limit; `None` means no limit of its own.
    pub timeout: Option<Duration>,
    /// Extra environment, in file order.
    pub env: Vec<(String, Template)>,
    /// Working directory, relative to the repository root.
    pub cwd: Option<Template>,
    /// JUnit XML report paths or globs, relative to the step's working directory.
    pub reports: Vec<String>,
}

impl Spec {
    /// Parses and validates a spec. `file_name` is only used in error messages.
    ///
    /// Every problem is reported, each with its line and column.
    pub fn parse(file_name: &str, text: &str) -> Result<Spec, SpecErrors> {
        validate::validate(file_name, text)
    }

    /// Reads and parses the spec at `path`. A file that cannot be read, or is not UTF-8,
    /// is reported as a [`SpecErrors`] too.
    pub fn load(path: &Path) -> Result<Spec, SpecErrors> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| {
            SpecErrors::new(vec![SpecError {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!(
                    "cannot read the file: {}",
                    lowercase_first(&err.to_string())
                ),
            }])
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => Spec::parse(&file, &text),
            Err(err) => {
                let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
                // Everything before the bad byte is valid UTF-8, so its lines and characters
                // can be counted.
                let before = std::str::from_utf8(valid).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let column = before[line_start..].chars().count() + 1;
                Err(SpecErrors::new(vec![SpecError {
                    file,
                    line,
                    column,
                    message: "invalid UTF-8: a spec must be UTF-8 text".to_owned(),
                }]))
            }
        }
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The named services plus everything they depend on, transitively, in dependency
    /// order: a service comes after all its dependencies. Among independent services the
    /// file order is kept. An empty `names` gives an empty list.
    pub fn closure(&self, names: &[String]) -> Result<Vec<&ServiceSpec>, ClosureError> {
        graph::closure(&self.services, names)
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Display for Command {
    /// The shell text, or the arguments separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Shell(text) => write!(f, "{text}"),
            Command::Argv(args) => {
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{arg}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_checks_compare_as_written() {
        let output = |p| ReadySpec::Output(Regex::new(p).unwrap());
        assert_eq!(output("ready"), output("ready"));
        assert_ne!(output("ready"), output("ready$"));
        assert_ne!(output("ready"), ReadySpec::None);
        let http = |status: &str| ReadySpec::Http {
            url: Template::parse("http://a/").unwrap(),
            status: Some(StatusPattern::new(status).unwrap()),
            method: None,
            body: None,
        };
        assert_eq!(http("2.."), http("2.."));
        assert_ne!(http("2.."), http("200"));
        assert_eq!(ReadySpec::Exit, ReadySpec::Exit);
        assert_ne!(ReadySpec::Exit, ReadySpec::None);
    }
}

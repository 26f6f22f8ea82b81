//! Signals by name, and how a process ended.

use std::fmt;
use std::str::FromStr;

/// A Unix signal number, named the way users write it (`SIGTERM`, `TERM`, `term`, `15`).
///
/// A newtype rather than an enum: the numbers differ between platforms and any signal may end
/// a process, so a process killed by a signal this crate has no name for still has a value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// The signals with names, in the order `kill -l` lists them on Linux.
const NAMED: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGSYS", libc::SIGSYS),
];

impl Signal {
    /// Polite stop request; the default stop signal.
    pub const SIGTERM: Signal = Signal(libc::SIGTERM);
    /// Interrupt, as from Ctrl-C.
    pub const SIGINT: Signal = Signal(libc::SIGINT);
    /// Quit; many servers treat it as "stop now, dump state".
    pub const SIGQUIT: Signal = Signal(libc::SIGQUIT);
    /// Hang-up; some servers stop on it, many reload.
    pub const SIGHUP: Signal = Signal(libc::SIGHUP);
    /// Cannot be caught or ignored.
    pub const SIGKILL: Signal = Signal(libc::SIGKILL);
    /// User-defined signal 1.
    pub const SIGUSR1: Signal = Signal(libc::SIGUSR1);
    /// User-defined signal 2.
    pub const SIGUSR2: Signal = Signal(libc::SIGUSR2);

    /// Wraps a raw signal number as the platform numbers it.
    pub const fn from_raw(number: i32) -> Signal {
        Signal(number)
    }

    /// The raw signal number, for `kill(2)`.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// The conventional name (`"SIGTERM"`), if the signal has one.
    pub fn name(self) -> Option<&'static str> {
        NAMED
            .iter()
            .find(|(_, number)| *number == self.0)
            .map(|(name, _)| *name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The error of parsing a [`Signal`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?} (expected a name like SIGTERM or TERM, or a number)")]
pub struct ParseSignalError(String);

impl FromStr for Signal {
    type Err = ParseSignalError;

    /// Accepts `SIGTERM`, `TERM`, `term`, `sigterm` and `15`.
    fn from_str(text: &str) -> Result<Signal, ParseSignalError> {
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i32>() {
            // Signal numbers are small and positive everywhere; 0 is "no signal" to kill(2).
            return if (1..=64).contains(&number) {
                Ok(Signal(number))
            } else {
                Err(ParseSignalError(text.to_owned()))
            };
        }
        let upper = trimmed.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMED
            .iter()
            .find(|(name, _)| &name[3..] == bare)
            .map(|(_, number)| Signal(*number))
            .ok_or_else(|| ParseSignalError(text.to_owned()))
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(Signal),
}

impl ExitStatus {
    /// Decodes a raw `waitpid(2)` status.
    pub fn from_raw(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(Signal(libc::WTERMSIG(status)))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }

    /// The exit code, if the process exited rather than being killed.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(code) => Some(code),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal that ended the process, if one did.
    pub fn signal(self) -> Option<Signal> {
        match self {
            ExitStatus::Code(_) => None,
            ExitStatus::Signal(signal) => Some(signal),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by {signal}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for text in ["SIGTERM", "TERM", "term", "sigterm", "15", " SigTerm "] {
            assert_eq!(text.parse::<Signal>(), Ok(Signal::SIGTERM), "{text}");
        }
        assert_eq!("kill".parse::<Signal>(), Ok(Signal::SIGKILL));
        assert_eq!("SIGUSR2".parse::<Signal>(), Ok(Signal::SIGUSR2));
        assert_eq!("2".parse::<Signal>(), Ok(Signal::SIGINT));
    }

    #[test]
    fn rejects_nonsense() {
        for text in ["", "SIG", "TERMINATE", "0", "-9", "65", "SIGFOO", "1.5"] {
            assert!(text.parse::<Signal>().is_err(), "{text:?} parsed");
        }
        assert_eq!(
            "FOO".parse::<Signal>().unwrap_err().to_string(),
            "unknown signal \"FOO\" (expected a name like SIGTERM or TERM, or a number)"
        );
    }

    #[test]
    fn displays_names_and_numbers() {
        assert_eq!(Signal::SIGTERM.to_string(), "SIGTERM");
        assert_eq!(Signal::from_raw(libc::SIGWINCH).to_string(), "SIGWINCH");
        assert_eq!(Signal::from_raw(40).to_string(), "signal 40");
        assert_eq!(format!("{:?}", Signal::SIGHUP), "SIGHUP");
    }

    #[test]
    fn every_name_round_trips() {
        for (name, number) in NAMED {
            let signal: Signal = name.parse().unwrap();
            assert_eq!(signal.as_raw(), *number);
            assert_eq!(signal.to_string(), *name);
        }
    }

    #[test]
    fn exit_status_decodes_and_displays() {
        assert_eq!(ExitStatus::from_raw(3 << 8), ExitStatus::Code(3));
        assert_eq!(
            ExitStatus::from_raw(libc::SIGKILL),
            ExitStatus::Signal(Signal::SIGKILL)
        );
        assert_eq!(ExitStatus::Code(3).to_string(), "exit code 3");
        assert_eq!(
            ExitStatus::Signal(Signal::SIGKILL).to_string(),
            "killed by SIGKILL"
        );
    }
}

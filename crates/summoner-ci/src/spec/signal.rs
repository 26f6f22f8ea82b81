//! `stop_signal:`: which signals a service may be stopped with.
//!
//! The names and numbers are `summoner-proc`'s ([`Signal`]); the spec only adds a rule over
//! them: a service is stopped with one of the signals servers commonly treat as "stop", and
//! the file names it rather than numbering it, because numbers differ between platforms.

use summoner_proc::Signal;

/// The signals a service may be stopped with, in the order messages list them.
pub(crate) const STOP_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGKILL,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Why a `stop_signal` was refused; the validator words the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A number: the file must name the signal. Carries the stop signal it stands for on
    /// this platform, if it is one.
    Number(Option<Signal>),
    /// A name that is not one of [`STOP_SIGNALS`] (unknown, or a signal that does not stop
    /// a service, such as `SIGWINCH`).
    Name,
}

/// A stop signal written as a name (`TERM`, `sigterm`, `SIGTERM`...).
pub(crate) fn stop_signal(text: &str) -> Result<Signal, Refused> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::Number(
            trimmed.parse::<i128>().ok().and_then(stop_signal_numbered),
        ));
    }
    // `Signal` also reads numbers, but a name with digits (`SIG15`) is not a number.
    match trimmed.parse::<Signal>() {
        Ok(signal) if STOP_SIGNALS.contains(&signal) => Ok(signal),
        _ => Err(Refused::Name),
    }
}

/// The stop signal numbered `number` on this platform, if there is one.
pub(crate) fn stop_signal_numbered(number: i128) -> Option<Signal> {
    STOP_SIGNALS
        .into_iter()
        .find(|signal| i128::from(signal.as_raw()) == number)
}

/// The accepted names, for messages: `SIGTERM, SIGINT, ...`.
pub(crate) fn stop_signal_names() -> impl Iterator<Item = &'static str> {
    STOP_SIGNALS.into_iter().filter_map(Signal::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_with_or_without_prefix_in_any_case() {
        for name in ["SIGTERM", "TERM", "term", "SigTerm", " sigterm "] {
            assert_eq!(stop_signal(name), Ok(Signal::SIGTERM), "{name}");
        }
        assert_eq!(stop_signal("INT"), Ok(Signal::SIGINT));
        assert_eq!(stop_signal("SIGUSR2"), Ok(Signal::SIGUSR2));
        assert_eq!(stop_signal("kill"), Ok(Signal::SIGKILL));
    }

    #[test]
    fn refuses_other_signals_unknown_names_and_numbers() {
        for name in [
            "SIGFOO",
            "",
            "SIG",
            "SIGSIGTERM",
            "SIGWINCH",
            "STOP",
            "SIG15",
            "-9",
        ] {
            assert_eq!(stop_signal(name), Err(Refused::Name), "{name}");
        }
        assert_eq!(
            stop_signal("15"),
            Err(Refused::Number(Some(Signal::SIGTERM)))
        );
        assert_eq!(stop_signal("0"), Err(Refused::Number(None)));
        assert_eq!(
            stop_signal("99999999999999999999999999999999999999999"),
            Err(Refused::Number(None))
        );
    }

    #[test]
    fn names_come_from_the_engine() {
        assert_eq!(
            stop_signal_names().collect::<Vec<_>>(),
            [
                "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2"
            ]
        );
    }
}

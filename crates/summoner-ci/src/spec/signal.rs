//! Stop signal names.
//!
//! The set matches what `summoner-proc` can send: the signals a service is commonly told
//! to stop with.

/// The accepted signals, in their normalised spelling.
pub(crate) const SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2",
];

/// Normalises `TERM`, `sigterm`, `SIGTERM`... to `SIGTERM`; `None` for an unknown name.
pub(crate) fn normalise_signal(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().copied().find(|s| &s[3..] == bare)
}

/// The number of the signals whose numbers are the same on every Unix, for hints.
pub(crate) fn signal_number(name: &str) -> Option<i128> {
    match name {
        "SIGHUP" => Some(1),
        "SIGINT" => Some(2),
        "SIGQUIT" => Some(3),
        "SIGKILL" => Some(9),
        "SIGTERM" => Some(15),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_with_or_without_prefix_in_any_case() {
        for name in ["SIGTERM", "TERM", "term", "SigTerm"] {
            assert_eq!(normalise_signal(name), Some("SIGTERM"), "{name}");
        }
        assert_eq!(normalise_signal("INT"), Some("SIGINT"));
        assert_eq!(normalise_signal("SIGUSR2"), Some("SIGUSR2"));
    }

    #[test]
    fn refuses_unknown_names_and_numbers() {
        for name in ["SIGFOO", "15", "", "SIG", "SIGSIGTERM"] {
            assert_eq!(normalise_signal(name), None, "{name}");
        }
    }
}

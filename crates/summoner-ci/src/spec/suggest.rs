//! "did you mean ...?" suggestions.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
///
/// Closeness is the optimal-string-alignment distance (a transposition such as `tpc` for
/// `tcp` counts as one edit), compared case-insensitively, and must be at most a third of
/// the word's length (at least one edit is always allowed), and less than the
/// candidate's length.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = strsim::osa_distance(&word, &candidate.to_lowercase());
        // Replacing every character of the candidate is not a typo.
        let rewrites_all = distance >= candidate.chars().count();
        if distance <= limit && !rewrites_all && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean "x"?`, or the empty string.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match closest(word, candidates) {
        Some(c) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words() {
        let keys = ["run", "ready", "depends_on", "timeout"];
        assert_eq!(closest("depend_on", keys), Some("depends_on"));
        assert_eq!(closest("Run", keys), Some("run"));
        assert_eq!(closest("redy", keys), Some("ready"));
        assert_eq!(closest("timeuot", keys), Some("timeout"));
        assert_eq!(closest("tpc", ["tcp", "http"]), Some("tcp"));
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        let keys = ["run", "ready", "depends_on", "timeout"];
        assert_eq!(closest("image", keys), None);
        assert_eq!(closest("", keys), None);
        assert_eq!(closest("x", ["a", "b"]), None);
        assert_eq!(closest("ab", ["db"]), Some("db"));
        assert_eq!(did_you_mean("image", keys), "");
        assert_eq!(did_you_mean("redy", keys), "; did you mean \"ready\"?");
    }
}

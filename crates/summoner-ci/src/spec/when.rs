//! `when:`: which pushes and pull requests the CI server builds.

/// The events the CI server knows.
pub(crate) const EVENTS: &[&str] = &["push", "pull_request", "manual"];

/// Conditions for building; an empty list places no condition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct When {
    /// Events among `push`, `pull_request` and `manual`; empty means any event.
    pub events: Vec<String>,
    /// Branch globs; empty means any branch. For a pull request the branch is its base
    /// branch.
    pub branches: Vec<String>,
}

impl When {
    /// Whether a build for `event` on `branch` is wanted. `branch` is `None` when the event
    /// has no branch (a tag push, say); branch conditions then fail.
    pub fn matches(&self, event: &str, branch: Option<&str>) -> bool {
        let event_ok = self.events.is_empty() || self.events.iter().any(|e| e == event);
        let branch_ok = self.branches.is_empty()
            || branch.is_some_and(|b| self.branches.iter().any(|g| glob_match(g, b)));
        event_ok && branch_ok
    }
}

/// Matches `text` against a branch glob: `*` is any run of characters except `/`, `**` is
/// any run including `/`, `?` is one character except `/`; everything else is literal.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // matches[j] == glob[..i] matches text[..j]; one row per glob position, so the cost is
    // O(len(glob) * len(text)) with no backtracking blow-up.
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    let mut i = 0;
    while i < glob.len() {
        let mut next = vec![false; text.len() + 1];
        match glob[i] {
            '*' if glob.get(i + 1) == Some(&'*') => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= matches[j];
                    next[j] = any;
                }
                i += 1;
            }
            '*' => {
                for j in 0..=text.len() {
                    next[j] = matches[j] || (j > 0 && next[j - 1] && text[j - 1] != '/');
                }
            }
            '?' => {
                for j in 1..=text.len() {
                    next[j] = matches[j - 1] && text[j - 1] != '/';
                }
            }
            c => {
                for j in 1..=text.len() {
                    next[j] = matches[j - 1] && text[j - 1] == c;
                }
            }
        }
        matches = next;
        i += 1;
    }
    matches[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("main", "main"));
        assert!(!glob_match("main", "mainline"));
        assert!(glob_match("release/*", "release/1.0"));
        assert!(!glob_match("release/*", "release/1.0/hotfix"));
        assert!(glob_match("release/**", "release/1.0/hotfix"));
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("*", "feature"));
        assert!(!glob_match("*", "feature/x"));
        assert!(glob_match("v?", "v1"));
        assert!(!glob_match("v?", "v10"));
        assert!(glob_match("*-stable", "2.0-stable"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn empty_conditions_match_everything() {
        let when = When::default();
        assert!(when.matches("push", Some("main")));
        assert!(when.matches("manual", None));
    }

    #[test]
    fn events_and_branches_must_both_match() {
        let when = When {
            events: vec!["push".into()],
            branches: vec!["main".into(), "release/*".into()],
        };
        assert!(when.matches("push", Some("main")));
        assert!(when.matches("push", Some("release/2")));
        assert!(!when.matches("pull_request", Some("main")));
        assert!(!when.matches("push", Some("dev")));
        assert!(!when.matches("push", None));
    }
}

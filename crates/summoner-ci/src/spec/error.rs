//! The errors a user reads when a build spec is wrong.

use std::fmt;

use thiserror::Error;

/// One problem in a build spec, with the position of the offending node.
///
/// `line` and `column` are 1-based and count characters. A `line` of 0 means the error
/// concerns the file as a whole (it could not be read); its `Display` then leaves the
/// position out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Error)]
pub struct SpecError {
    /// The file name as given to [`Spec::parse`](super::Spec::parse) or the path given to
    /// [`Spec::load`](super::Spec::load).
    pub file: String,
    /// 1-based line, or 0 for an error without a position.
    pub line: usize,
    /// 1-based column in characters, or 0 for an error without a position.
    pub column: usize,
    /// What is wrong and what was expected, in lowercase, without the position.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in a build spec, sorted by position.
///
/// Validation does not stop at the first problem: a user fixing a file sees all of them at
/// once. `Display` prints one error per line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// Sorts the errors by file, line and column and drops exact repeats.
    pub(crate) fn new(mut errors: Vec<SpecError>) -> Self {
        errors.sort();
        errors.dedup();
        SpecErrors(errors)
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no errors (never the case for an `Err` from this module).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the errors in position order.
    pub fn iter(&self) -> std::slice::Iter<'_, SpecError> {
        self.0.iter()
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The field is public, so the order is not guaranteed by construction alone.
        let mut sorted: Vec<&SpecError> = self.0.iter().collect();
        sorted.sort();
        for (i, error) in sorted.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a SpecError;
    type IntoIter = std::slice::Iter<'a, SpecError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for SpecErrors {
    type Item = SpecError;
    type IntoIter = std::vec::IntoIter<SpecError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// [`Spec::closure`](super::Spec::closure) was asked for a service the spec does not define.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClosureError {
    /// The name matches no service.
    #[error("unknown service {name:?}{}", hint(.suggestion, .known))]
    UnknownService {
        /// The name that was asked for.
        name: String,
        /// The closest defined service name, if one is close enough.
        suggestion: Option<String>,
        /// Every defined service name, in file order.
        known: Vec<String>,
    },
}

fn hint(suggestion: &Option<String>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean {s:?}?"),
        None if known.is_empty() => "; the spec defines no services".to_owned(),
        None => format!("; defined services: {}", known.join(", ")),
    }
}

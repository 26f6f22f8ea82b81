//! `${VAR}` interpolation, parsed when the spec is read and rendered when the job runs.
//!
//! Resource variables such as `SUMMONER_PORTS_0_PORT` only exist once the broker has
//! granted a lease, so a spec keeps each interpolated value as a [`Template`]: the raw
//! text plus its parsed segments. Syntax errors are found at parse time, with a
//! position; a missing variable is found at render time.

use std::fmt;

use thiserror::Error;

/// A string with `${VAR}` references, parsed but not yet substituted.
///
/// Syntax:
///
/// - `${NAME}` is replaced by the variable `NAME` (letters, digits and `_`, not starting
///   with a digit). Rendering fails if it is not set.
/// - `${NAME:-default}` is replaced by `NAME`, or by `default` when `NAME` is unset or
///   empty (as in the shell). The default is literal text up to the first `}`; `$$` in it
///   is a `$`.
/// - `$$` is a literal `$`.
/// - A `$` followed by anything else (`$HOME`, `$1`, `$(date)`, a trailing `$`) is kept
///   as it is, so shell code in `run:` keeps working and the shell expands it later.
/// - `${` without a closing `}`, `${}`, a name that is not a valid name and any other
///   shell-style operator (`${A#x}`, `${A:=x}`, nested `${A:-${B}}`) are errors; write
///   `$${...}` to hand such an expression to the shell untouched.
///
/// `Display` shows the raw text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    raw: String,
    segments: Vec<Segment>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text copied as it is (with `$$` already turned into `$`).
    Literal(String),
    /// A `${name}` or `${name:-default}` reference.
    Var {
        /// The variable name.
        name: String,
        /// The text after `:-`, if any.
        default: Option<String>,
    },
}

/// A syntax error in a template, found at parse time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct TemplateError {
    /// Byte offset of the offending `${` in the raw text.
    pub offset: usize,
    /// What is wrong.
    pub kind: TemplateErrorKind,
}

/// The kinds of [`TemplateError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// `${` with no `}` after it.
    #[error("unclosed \"${{\": expected \"}}\" (write \"$$\" for a literal \"$\")")]
    Unclosed,
    /// `${}` or `${:-x}`.
    #[error("empty variable name in {text:?}: expected ${{NAME}} or ${{NAME:-default}}")]
    EmptyName {
        /// The whole `${...}` expression.
        text: String,
    },
    /// A name with characters other than letters, digits and `_`, or starting with a digit;
    /// this is also what a shell operator such as `${A#x}` looks like.
    #[error(
        "invalid variable name {name:?} in {text:?}: expected ${{NAME}} or ${{NAME:-default}}, \
         NAME made of letters, digits and \"_\" and not starting with a digit \
         (write \"$${{\" to leave \"${{\" to the shell)"
    )]
    InvalidName {
        /// The text between `${` and `}` (or `:-`).
        name: String,
        /// The whole `${...}` expression.
        text: String,
    },
    /// `${A:-${B}}`: defaults are literal text.
    #[error("nested \"${{\" in the default of {text:?}: a default is literal text")]
    Nested {
        /// The whole `${...}` expression, up to the first `}`.
        text: String,
    },
}

/// A template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A `${NAME}` without a default named a variable that is not set.
    #[error("variable {name:?} is not set (write ${{{name}:-default}} to give it a default)")]
    Unset {
        /// The variable's name.
        name: String,
    },
}

impl Template {
    /// Parses `raw`, checking every `${...}` in it.
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        let bytes = raw.as_bytes();
        let mut segments = Vec::new();
        let mut literal = String::new();
        // Start of the literal text not yet copied into `literal`.
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            match bytes.get(i + 1) {
                Some(b'$') => {
                    literal.push_str(&raw[copied..=i]);
                    i += 2;
                    copied = i;
                }
                Some(b'{') => {
                    literal.push_str(&raw[copied..i]);
                    let (segment, end) = parse_reference(raw, i)?;
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(segment);
                    i = end;
                    copied = i;
                }
                _ => i += 1,
            }
        }
        literal.push_str(&raw[copied..]);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The text as written in the spec.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The parsed pieces, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The names of the variables referenced, in order of appearance (repeats included).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Whether the template references no variable (its rendering never fails).
    pub fn is_literal(&self) -> bool {
        self.variables().next().is_none()
    }

    /// Substitutes every reference, asking `lookup` for variable values.
    ///
    /// An unset variable with a default takes the default, as does a variable set to the
    /// empty string; an unset variable without a default is an error naming it.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.raw.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Var { name, default } => match (lookup(name), default) {
                    (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => return Err(RenderError::Unset { name: name.clone() }),
                },
            }
        }
        Ok(out)
    }
}

/// Parses the `${...}` starting at byte `start`; returns the segment and the byte after `}`.
fn parse_reference(raw: &str, start: usize) -> Result<(Segment, usize), TemplateError> {
    let error = |kind| TemplateError {
        offset: start,
        kind,
    };
    let body_start = start + 2;
    let Some(close) = raw[body_start..].find('}').map(|i| body_start + i) else {
        return Err(error(TemplateErrorKind::Unclosed));
    };
    let text = &raw[start..=close];
    let body = &raw[body_start..close];
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if name.is_empty() {
        return Err(error(TemplateErrorKind::EmptyName { text: text.into() }));
    }
    if !is_valid_name(name) {
        return Err(error(TemplateErrorKind::InvalidName {
            name: name.into(),
            text: text.into(),
        }));
    }
    if default.is_some_and(|d| d.contains("${")) {
        return Err(error(TemplateErrorKind::Nested { text: text.into() }));
    }
    let segment = Segment::Var {
        name: name.to_owned(),
        default: default.map(|d| d.replace("$$", "$")),
    };
    Ok((segment, close + 1))
}

/// Whether `name` is a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("6390".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn render(raw: &str) -> Result<String, RenderError> {
        Template::parse(raw).unwrap().render(env)
    }

    fn parse_err(raw: &str) -> TemplateError {
        Template::parse(raw).unwrap_err()
    }

    #[test]
    fn substitutes_variables() {
        assert_eq!(render("--port ${PORT}").unwrap(), "--port 6390");
        assert_eq!(render("${PORT}${PORT}").unwrap(), "63906390");
        assert_eq!(render("no vars").unwrap(), "no vars");
        assert_eq!(render("").unwrap(), "");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(render("${NOPE:-x}").unwrap(), "x");
        assert_eq!(render("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(render("${PORT:-x}").unwrap(), "6390");
        assert_eq!(render("${NOPE:-}").unwrap(), "");
        assert_eq!(render("${NOPE:-a:-b}").unwrap(), "a:-b");
        assert_eq!(render("${NOPE:-$$5}").unwrap(), "$5");
        assert_eq!(render("${NOPE:-$HOME}").unwrap(), "$HOME");
    }

    #[test]
    fn empty_value_without_default_is_empty() {
        assert_eq!(render("[${EMPTY}]").unwrap(), "[]");
    }

    #[test]
    fn unset_variable_is_a_render_error_naming_it() {
        let err = render("a ${NOPE} b").unwrap_err();
        assert_eq!(
            err,
            RenderError::Unset {
                name: "NOPE".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "variable \"NOPE\" is not set (write ${NOPE:-default} to give it a default)"
        );
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(render("$$").unwrap(), "$");
        assert_eq!(render("$$$$").unwrap(), "$$");
        assert_eq!(render("$${PORT}").unwrap(), "${PORT}");
        assert_eq!(render("$$$").unwrap(), "$$");
        assert_eq!(render("cost: 5$$").unwrap(), "cost: 5$");
    }

    #[test]
    fn lone_dollar_passes_through() {
        for raw in [
            "$HOME",
            "echo $1 $@ $?",
            "$(date)",
            "a$",
            "$",
            "x $ y",
            "$é",
        ] {
            assert_eq!(render(raw).unwrap(), raw);
        }
        assert!(Template::parse("$HOME").unwrap().is_literal());
    }

    #[test]
    fn unclosed_reference_is_an_error_with_offset() {
        let err = parse_err("abc ${PORT");
        assert_eq!(err.offset, 4);
        assert_eq!(err.kind, TemplateErrorKind::Unclosed);
        assert_eq!(parse_err("${").offset, 0);
    }

    #[test]
    fn invalid_names_are_errors() {
        assert!(matches!(
            parse_err("${}").kind,
            TemplateErrorKind::EmptyName { .. }
        ));
        assert!(matches!(
            parse_err("${:-x}").kind,
            TemplateErrorKind::EmptyName { .. }
        ));
        for raw in ["${1A}", "${A B}", "${A-x}", "${A#x}", "${A:=x}", "${é}"] {
            assert!(
                matches!(parse_err(raw).kind, TemplateErrorKind::InvalidName { .. }),
                "{raw}"
            );
        }
        let err = parse_err("x${1A}");
        assert_eq!(err.offset, 1);
        assert_eq!(
            err.to_string(),
            "invalid variable name \"1A\" in \"${1A}\": expected ${NAME} or ${NAME:-default}, \
             NAME made of letters, digits and \"_\" and not starting with a digit \
             (write \"$${\" to leave \"${\" to the shell)"
        );
    }

    #[test]
    fn nested_defaults_are_errors() {
        assert!(matches!(
            parse_err("${A:-${B}}").kind,
            TemplateErrorKind::Nested { .. }
        ));
    }

    #[test]
    fn segments_and_variables() {
        let t = Template::parse("a${X}b${Y:-1}$$").unwrap();
        assert_eq!(
            t.segments(),
            &[
                Segment::Literal("a".into()),
                Segment::Var {
                    name: "X".into(),
                    default: None
                },
                Segment::Literal("b".into()),
                Segment::Var {
                    name: "Y".into(),
                    default: Some("1".into())
                },
                Segment::Literal("$".into()),
            ]
        );
        assert_eq!(t.variables().collect::<Vec<_>>(), ["X", "Y"]);
        assert!(!t.is_literal());
        assert_eq!(t.raw(), "a${X}b${Y:-1}$$");
        assert_eq!(t.to_string(), "a${X}b${Y:-1}$$");
    }

    #[test]
    fn names_may_contain_underscores_and_digits() {
        assert!(is_valid_name("_A1"));
        assert!(is_valid_name("SUMMONER_PORTS_0_PORT"));
        assert!(!is_valid_name("0A"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("A-B"));
    }
}

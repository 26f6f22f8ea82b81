//! `ready:`: how a service's readiness is detected.

use summoner_proc::StatusPattern;
use summoner_proc::regex::{self, Regex};

use super::model::ReadySpec;
use super::raw::{self, Kind, Node};
use super::suggest::did_you_mean;
use super::template::Template;
use super::validate::Cx;

/// The readiness kinds that take a mapping: `{ tcp: "127.0.0.1:6379" }`.
const KINDS: &[&str] = &["output", "tcp", "http", "unix", "file", "cmd", "exit"];
/// Options of the `http` kind.
const HTTP_OPTIONS: &[&str] = &["status", "method", "body"];
/// Every key a `ready` mapping may hold.
const READY_KEYS: &[&str] = &[
    "output", "tcp", "http", "unix", "file", "cmd", "exit", "status", "method", "body",
];

impl Cx<'_> {
    /// Parses a `ready:` value. `context` reads like `in "ready" of service "web"`.
    pub(crate) fn ready(&mut self, node: &Node, context: &str) -> ReadySpec {
        match &node.kind {
            Kind::Null => ReadySpec::None,
            Kind::Str(word) => self.ready_word(node, word),
            Kind::Map(entries) => self.ready_map(node, entries, context),
            _ => {
                self.expected(
                    node,
                    "\"none\", \"exit\" or a mapping like { tcp: \"127.0.0.1:6379\" }",
                );
                ReadySpec::None
            }
        }
    }

    fn ready_word(&mut self, node: &Node, word: &str) -> ReadySpec {
        match word.trim() {
            "none" => ReadySpec::None,
            "exit" => ReadySpec::Exit,
            kind if KINDS.contains(&kind) => {
                let message = format!(
                    "expected {{ {kind}: ... }} with what to check, found {}",
                    node.describe(self.text)
                );
                self.error(node.pos, message);
                ReadySpec::None
            }
            other => {
                let hint = did_you_mean(
                    other,
                    ["none", "exit"].into_iter().chain(KINDS.iter().copied()),
                );
                let message = format!(
                    "expected \"none\", \"exit\" or a mapping like {{ tcp: \"127.0.0.1:6379\" }}, \
                     found {}{hint}",
                    node.describe(self.text)
                );
                self.error(node.pos, message);
                ReadySpec::None
            }
        }
    }

    fn ready_map(&mut self, node: &Node, entries: &[(Node, Node)], context: &str) -> ReadySpec {
        let entries = self.entries(entries, context);
        let mut kinds = Vec::new();
        let mut options = Vec::new();
        let mut unknown = false;
        for entry in &entries {
            if KINDS.contains(&entry.key.as_str()) {
                kinds.push(entry);
            } else if HTTP_OPTIONS.contains(&entry.key.as_str()) {
                options.push(entry);
            } else {
                self.unknown_key(entry, READY_KEYS, context);
                unknown = true;
            }
        }
        let Some(kind) = kinds.first() else {
            if unknown {
                // `{ tpc: ... }`: the unknown-key error already says what to write.
                return ReadySpec::None;
            }
            let message = format!(
                "missing readiness kind {context}: expected one of {}",
                KINDS.join(", ")
            );
            self.error(node.pos, message);
            return ReadySpec::None;
        };
        if kinds.len() > 1 {
            let names: Vec<String> = kinds.iter().map(|e| format!("{:?}", e.key)).collect();
            let (last, rest) = names.split_last().unwrap_or((&names[0], &[]));
            let count = match kinds.len() {
                2 => "two".to_owned(),
                n => n.to_string(),
            };
            let message = format!(
                "{count} readiness kinds, {} and {last}, {context}: expected exactly one",
                rest.join(", "),
            );
            self.error(kinds[1].key_node.pos, message);
            return ReadySpec::None;
        }
        if kind.key != "http" {
            for option in &options {
                let message = format!(
                    "{:?} only applies to http readiness, not {:?} ({context})",
                    option.key, kind.key
                );
                self.error(option.key_node.pos, message);
            }
        }
        let value = kind.value;
        let ready = match kind.key.as_str() {
            "output" => self
                .regex(value, "a regex (a string)", Regex::new)
                .map(ReadySpec::Output),
            "tcp" => self.address(value).map(ReadySpec::Tcp),
            "http" => {
                // The options are checked even when the URL is wrong, to report everything.
                let mut status = None;
                let mut method = None;
                let mut body = None;
                for option in &options {
                    match option.key.as_str() {
                        "status" => {
                            status = self.regex(
                                option.value,
                                "a status regex like \"2..\"",
                                StatusPattern::new,
                            )
                        }
                        "method" => method = self.method(option.value),
                        _ => body = self.non_empty_text(option.value, "a substring of the body"),
                    }
                }
                self.url(value).map(|url| ReadySpec::Http {
                    url,
                    status,
                    method,
                    body,
                })
            }
            "unix" => self.path(value, "a socket path").map(ReadySpec::Unix),
            "file" => self.path(value, "a file path").map(ReadySpec::File),
            "cmd" => self.command(value, "cmd", context).map(ReadySpec::Cmd),
            _ => match &value.kind {
                Kind::Bool(true) => Some(ReadySpec::Exit),
                _ => {
                    self.expected(value, "true (ready: exit means the task must exit 0)");
                    None
                }
            },
        };
        ready.unwrap_or_default()
    }

    /// A pattern compiled by `compile` (the engine's own types, so that what is accepted
    /// here is what the engine runs).
    fn regex<T>(
        &mut self,
        node: &Node,
        expected: &str,
        compile: impl FnOnce(&str) -> Result<T, regex::Error>,
    ) -> Option<T> {
        let pattern = self.non_empty_text(node, expected)?;
        match compile(&pattern) {
            Ok(compiled) => Some(compiled),
            Err(err) => {
                let message = format!(
                    "invalid regex {}: {}",
                    raw::quote_short(&pattern),
                    regex_problem(&err)
                );
                self.error(node.pos, message);
                None
            }
        }
    }

    /// `HOST:PORT`, checked when it has no variables.
    fn address(&mut self, node: &Node) -> Option<Template> {
        const EXPECTED: &str = "an address like \"127.0.0.1:6379\" (HOST:PORT)";
        let text = self.non_empty_text(node, EXPECTED)?;
        let template = self.template_from(node, &text)?;
        if template.is_literal() && !is_host_port(&text) {
            self.expected(node, EXPECTED);
            return None;
        }
        Some(template)
    }

    /// An `http://` or `https://` URL, checked unless it starts with a variable.
    fn url(&mut self, node: &Node) -> Option<Template> {
        const EXPECTED: &str = "a URL like \"http://127.0.0.1:8080/health\"";
        let text = self.non_empty_text(node, EXPECTED)?;
        let template = self.template_from(node, &text)?;
        let scheme_ok = ["http://", "https://"]
            .iter()
            // `get`, not indexing: the text may have a multi-byte character where the
            // scheme would end (a proptest found `http:\u{feff}//`, which panicked).
            .any(|s| {
                text.len() > s.len()
                    && text
                        .get(..s.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
        if !scheme_ok && !text.starts_with("${") {
            self.expected(node, EXPECTED);
            return None;
        }
        Some(template)
    }

    fn path(&mut self, node: &Node, expected: &str) -> Option<Template> {
        let text = self.non_empty_text(node, expected)?;
        self.template_from(node, &text)
    }

    /// An HTTP method, returned in upper case.
    fn method(&mut self, node: &Node) -> Option<String> {
        const EXPECTED: &str = "an HTTP method like GET or HEAD";
        if let Kind::Str(method) = &node.kind
            && !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Some(method.to_ascii_uppercase());
        }
        self.expected(node, EXPECTED);
        None
    }
}

/// The one-line cause of a regex error (the crate's syntax errors span several lines).
fn regex_problem(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `host:port` or `[v6]:port` with a port from 1 to 65535.
fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host_ok = if host.contains(':') {
        host.len() > 2 && host.starts_with('[') && host.ends_with(']')
    } else {
        !host.is_empty() && !host.contains(char::is_whitespace)
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert!(is_host_port("127.0.0.1:6379"));
        assert!(is_host_port("localhost:80"));
        assert!(is_host_port("[::1]:8080"));
        assert!(!is_host_port("localhost"));
        assert!(!is_host_port("localhost:0"));
        assert!(!is_host_port("localhost:99999"));
        assert!(!is_host_port(":80"));
        assert!(!is_host_port("::1:80"));
    }

    #[test]
    fn regex_problems_fit_on_one_line() {
        // Built at run time so that clippy does not reject the deliberately bad pattern.
        let pattern = String::from("(abc");
        let err = regex::Regex::new(&pattern).unwrap_err();
        assert_eq!(regex_problem(&err), "unclosed group");
    }
}

//! Turns the raw node tree into a [`Spec`], collecting every problem on the way.
//!
//! Each check records an error and carries on with what it can, so one run reports all the
//! problems of a file. A value with an error is left out of the result; since the result is
//! only returned when there are no errors, that never shows.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use summoner_proc::Signal;
use summoner_protocol::duration::{DurationErrorKind, parse_duration};

use super::error::{SpecError, SpecErrors};
use super::graph::cycle_errors;
use super::layout;
use super::model::{Command, ResourceReq, ServiceSpec, Spec, Step};
use super::raw::{self, Kind, Node, Pos};
use super::signal::{Refused, stop_signal, stop_signal_names, stop_signal_numbered};
use super::suggest::{closest, did_you_mean};
use super::template::{Template, is_valid_name};
use super::when::{EVENTS, When};

const TOP_KEYS: &[&str] = &["env", "resources", "services", "steps", "when"];
const RESOURCE_KEYS: &[&str] = &["pool", "count", "labels"];
const SERVICE_KEYS: &[&str] = &[
    "run",
    "ready",
    "timeout",
    "env",
    "cwd",
    "stop_signal",
    "stop_grace",
    "exit_codes",
    "depends_on",
];
const STEP_KEYS: &[&str] = &["name", "run", "timeout", "env", "cwd", "reports"];
const WHEN_KEYS: &[&str] = &["event", "branch"];

/// Parses and validates `text`; see [`Spec::parse`].
pub(crate) fn validate(file: &str, text: &str) -> Result<Spec, SpecErrors> {
    let mut cx = Cx::new(file, text);
    let spec = match raw::parse_document(text) {
        Ok(doc) => cx.spec(&doc),
        Err(err) => {
            let (pos, message) = explain_syntax_error(text, &err);
            cx.error(pos, format!("invalid YAML: {message}"));
            Spec::default()
        }
    };
    if cx.errors.is_empty() {
        Ok(spec)
    } else {
        Err(SpecErrors::new(cx.errors))
    }
}

/// Where a syntax error most likely is, and what to say about it.
///
/// The parser reports where it noticed the problem; when the layout of the lines before
/// shows a likelier culprit (a key indented unlike its neighbours, a tab, an unclosed
/// quote), that line is reported instead, with the parser's words kept at the end if they
/// are about another line.
fn explain_syntax_error(text: &str, err: &raw::SyntaxError) -> (Pos, String) {
    let parser_pos = err.pos.unwrap_or(Pos { line: 1, column: 1 });
    let Some(hint) = err.pos.and_then(|pos| layout::explain(text, pos.line)) else {
        return (parser_pos, err.message.clone());
    };
    let message = if hint.pos.line == parser_pos.line {
        hint.message
    } else {
        format!(
            "{} (the parser stopped at line {}, column {}: {})",
            hint.message, parser_pos.line, parser_pos.column, err.message
        )
    };
    (hint.pos, message)
}

/// The validation context: the source for positions and the errors found so far.
pub(crate) struct Cx<'t> {
    file: &'t str,
    pub(super) text: &'t str,
    /// The width in characters of each line, to keep positions inside the file.
    line_widths: Vec<usize>,
    errors: Vec<SpecError>,
}

/// A mapping entry whose key is a string.
pub(crate) struct Entry<'n> {
    pub key: String,
    pub key_node: &'n Node,
    pub value: &'n Node,
}

/// A service as far as it could be validated, and its `depends_on` entries with their
/// positions (kept even when the service has other errors, so the graph checks see every
/// declared edge).
struct ParsedService {
    service: Option<ServiceSpec>,
    depends_on: Vec<(String, Pos)>,
}

/// The entries of a struct-like mapping, checked against its allowed keys.
pub(crate) struct Fields<'n> {
    pub pos: Pos,
    pub entries: Vec<Entry<'n>>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.value)
    }
}

impl<'t> Cx<'t> {
    fn new(file: &'t str, text: &'t str) -> Self {
        Cx {
            file,
            text,
            line_widths: text.split('\n').map(|l| l.chars().count()).collect(),
            errors: Vec::new(),
        }
    }

    /// Records an error at `pos`, clamped into the file so that a position reported by
    /// the YAML layer can never point past the text.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        let line = pos.line.clamp(1, self.line_widths.len());
        let column = pos.column.clamp(1, self.line_widths[line - 1] + 1);
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    /// "expected ..., found ..." at `node`.
    pub fn expected(&mut self, node: &Node, expected: &str) {
        let found = node.describe(self.text);
        self.error(node.pos, format!("expected {expected}, found {found}"));
    }

    /// The position of byte `offset` of the source.
    fn pos_at(&self, offset: usize) -> Option<Pos> {
        let before = self.text.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Some(Pos {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        })
    }

    // ---- generic shapes ----------------------------------------------------------------

    /// The string-keyed entries of a mapping, reporting non-string and duplicate keys.
    pub fn entries<'n>(&mut self, entries: &'n [(Node, Node)], context: &str) -> Vec<Entry<'n>> {
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for (key_node, value) in entries {
            let Some(key) = key_node.scalar_text(self.text) else {
                let found = key_node.describe(self.text);
                self.error(
                    key_node.pos,
                    format!("expected a string key {context}, found {found}"),
                );
                continue;
            };
            if let Some(first) = seen.get(&key) {
                let message = format!(
                    "duplicate key {} {context} (first defined at line {}, column {})",
                    raw::quote_short(&key),
                    first.line,
                    first.column
                );
                self.error(key_node.pos, message);
                continue;
            }
            seen.insert(key.clone(), key_node.pos);
            out.push(Entry {
                key,
                key_node,
                value,
            });
        }
        out
    }

    /// A struct-like mapping: reports unknown keys (with a suggestion) and duplicates.
    /// Null counts as an empty mapping. `None` if `node` is not a mapping at all.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        context: &str,
        expected: &str,
    ) -> Option<Fields<'n>> {
        let entries = match &node.kind {
            Kind::Map(entries) => self.entries(entries, context),
            Kind::Null => Vec::new(),
            _ => {
                self.expected(node, expected);
                return None;
            }
        };
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            if allowed.contains(&entry.key.as_str()) {
                known.push(entry);
            } else {
                self.unknown_key(&entry, allowed, context);
            }
        }
        Some(Fields {
            pos: node.pos,
            entries: known,
        })
    }

    pub fn unknown_key(&mut self, entry: &Entry<'_>, allowed: &[&str], context: &str) {
        let hint = match closest(&entry.key, allowed.iter().copied()) {
            Some(s) => format!("; did you mean {s:?}?"),
            None => format!("; expected one of {}", allowed.join(", ")),
        };
        let key = raw::quote_short(&entry.key);
        self.error(
            entry.key_node.pos,
            format!("unknown key {key} {context}{hint}"),
        );
    }

    pub fn missing(&mut self, fields: &Fields<'_>, key: &str, context: &str) {
        self.error(
            fields.pos,
            format!("missing required key {key:?} {context}"),
        );
    }

    /// A string, or a number or boolean taken as written.
    pub fn text(&mut self, node: &Node, expected: &str) -> Option<String> {
        let text = node.scalar_text(self.text);
        if text.is_none() {
            self.expected(node, expected);
        }
        text
    }

    /// Like [`Cx::text`], refusing an empty or blank string.
    pub fn non_empty_text(&mut self, node: &Node, expected: &str) -> Option<String> {
        let text = self.text(node, expected)?;
        if text.trim().is_empty() {
            self.expected(node, expected);
            return None;
        }
        Some(text)
    }

    /// A list of strings; a single string stands for a one-item list and null for none.
    /// `item` reads like "a service name", `list` like "a list of service names".
    pub fn text_list<'n>(
        &mut self,
        node: &'n Node,
        item: &str,
        list: &str,
    ) -> Vec<(String, &'n Node)> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Null => Vec::new(),
            Kind::Seq(items) => items.iter().collect(),
            Kind::Map(_) => {
                self.expected(node, list);
                return Vec::new();
            }
            _ => vec![node],
        };
        items
            .into_iter()
            .filter_map(|i| Some((self.non_empty_text(i, item)?, i)))
            .collect()
    }

    /// A template from a string (or number) value.
    pub fn template(&mut self, node: &Node, expected: &str) -> Option<Template> {
        let text = self.text(node, expected)?;
        self.template_from(node, &text)
    }

    /// Parses `value`, the text of `node`, reporting a syntax error at the offending `${`.
    pub fn template_from(&mut self, node: &Node, value: &str) -> Option<Template> {
        match Template::parse(value) {
            Ok(template) => Some(template),
            Err(err) => {
                let pos = self.locate_in(node, value, err.offset).unwrap_or(node.pos);
                self.error(pos, err.to_string());
                None
            }
        }
    }

    /// Finds the source position of the `${` at byte `offset` of `value`: the k-th `${` of
    /// the value is the k-th `${` of the node's source text, whatever the quoting or block
    /// style around it.
    fn locate_in(&self, node: &Node, value: &str, offset: usize) -> Option<Pos> {
        let k = value.get(..offset)?.matches("${").count();
        let src = node.src.clone()?;
        let source = self.text.get(src.clone())?;
        let (at, _) = source.match_indices("${").nth(k)?;
        self.pos_at(src.start + at)
    }

    /// A duration such as `30s`, in the grammar of `summoner_protocol::duration`.
    pub fn duration(&mut self, node: &Node) -> Option<Duration> {
        const EXPECTED: &str = "a duration like \"30s\" or \"500ms\"";
        let found = node.describe(self.text);
        let result = match &node.kind {
            Kind::Str(text) => parse_duration(text).map_err(|e| e.kind()),
            Kind::Int(_) => Err(DurationErrorKind::MissingUnit),
            _ => Err(DurationErrorKind::Invalid),
        };
        match result {
            Ok(duration) => Some(duration),
            Err(DurationErrorKind::MissingUnit) => {
                let number = node.scalar_text(self.text).unwrap_or_default();
                let number = number.trim();
                self.error(
                    node.pos,
                    format!("expected {EXPECTED}, found {found}; add a unit, e.g. \"{number}s\""),
                );
                None
            }
            // The grammar's own messages are for a bare value; here the position and the
            // "expected ..., found ..." form of every other spec error read better.
            Err(_) => {
                self.error(node.pos, format!("expected {EXPECTED}, found {found}"));
                None
            }
        }
    }

    /// A positive duration (timeouts).
    fn timeout(&mut self, node: &Node) -> Option<Duration> {
        let duration = self.duration(node)?;
        if duration.is_zero() {
            let found = node.describe(self.text);
            self.error(
                node.pos,
                format!("expected a timeout greater than zero, found {found}"),
            );
            return None;
        }
        Some(duration)
    }

    /// A command: a non-empty string (for `sh -c`) or a non-empty list of arguments.
    pub fn command(&mut self, node: &Node, key: &str, context: &str) -> Option<Command> {
        match &node.kind {
            Kind::Str(text) => {
                if text.trim().is_empty() {
                    self.error(
                        node.pos,
                        format!("empty {key:?} {context}: expected a command"),
                    );
                    return None;
                }
                self.template_from(node, text).map(Command::Shell)
            }
            Kind::Seq(items) => {
                if items.is_empty() {
                    let message = format!(
                        "empty {key:?} list {context}: expected the program and its arguments"
                    );
                    self.error(node.pos, message);
                    return None;
                }
                let mut argv = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let arg = if i == 0 {
                        self.non_empty_text(item, "a program name")
                    } else {
                        self.text(item, "an argument (a string)")
                    };
                    if let Some(template) = arg.and_then(|a| self.template_from(item, &a)) {
                        argv.push(template);
                    }
                }
                (argv.len() == items.len()).then_some(Command::Argv(argv))
            }
            _ => {
                self.expected(
                    node,
                    "a command: a string (run with sh -c) or a list of arguments",
                );
                None
            }
        }
    }

    /// An `env:` mapping of variable names to templates.
    pub fn env(&mut self, node: &Node, context: &str) -> Vec<(String, Template)> {
        let entries = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Map(entries) => self.entries(entries, context),
            _ => {
                self.expected(node, "a mapping of variable names to values");
                return Vec::new();
            }
        };
        let mut env = Vec::with_capacity(entries.len());
        for entry in entries {
            if !is_valid_name(&entry.key) {
                let message = format!(
                    "invalid variable name {}: expected letters, digits and \"_\", \
                     not starting with a digit",
                    raw::quote_short(&entry.key)
                );
                self.error(entry.key_node.pos, message);
            }
            let value = entry.value;
            let template = match &value.kind {
                Kind::Null => {
                    let message = format!(
                        "expected a value for {:?}, found nothing (write \"\" for an empty value)",
                        entry.key
                    );
                    self.error(entry.key_node.pos, message);
                    None
                }
                _ => self.template(value, "a string, number or boolean"),
            };
            if let Some(template) = template {
                env.push((entry.key, template));
            }
        }
        env
    }

    // ---- sections ----------------------------------------------------------------------

    fn spec(&mut self, doc: &Node) -> Spec {
        let mut spec = Spec::default();
        let entries = match &doc.kind {
            Kind::Null => return spec,
            Kind::Map(entries) => self.entries(entries, "at the top level"),
            _ => {
                self.expected(
                    doc,
                    "a mapping with env, resources, services, steps or when",
                );
                return spec;
            }
        };
        for entry in entries {
            let value = entry.value;
            match entry.key.as_str() {
                "env" => spec.env = self.env(value, "in \"env\""),
                "resources" => spec.resources = self.resources(value),
                "services" => spec.services = self.services(value),
                "steps" => spec.steps = self.steps(value),
                "when" => spec.when = self.when(value),
                // Extension fields, as in Compose files: a place for YAML anchors to share.
                key if key.starts_with("x-") => {}
                _ => self.unknown_key(&entry, TOP_KEYS, "at the top level"),
            }
        }
        spec
    }

    fn resources(&mut self, node: &Node) -> Vec<ResourceReq> {
        let items = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Seq(items) => items,
            _ => {
                self.expected(node, "a list of resources like { pool: ports, count: 2 }");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let context = format!("in resource {}", i + 1);
            let expected = "a resource like { pool: ports, count: 2 }";
            let Some(fields) = self.fields(item, RESOURCE_KEYS, &context, expected) else {
                continue;
            };
            let pool = match fields.get("pool") {
                Some(node) => self.non_empty_text(node, "a pool name"),
                None => {
                    self.missing(&fields, "pool", &context);
                    None
                }
            };
            let count = match fields.get("count") {
                None => Some(1),
                Some(node) => self.count(node),
            };
            let labels = match fields.get("labels") {
                None => Some(BTreeMap::new()),
                Some(node) => self.labels(node, &context),
            };
            if let (Some(pool), Some(count), Some(labels)) = (pool, count, labels) {
                out.push(ResourceReq {
                    pool,
                    count,
                    labels,
                });
            }
        }
        out
    }

    fn count(&mut self, node: &Node) -> Option<u32> {
        match &node.kind {
            Kind::Int(n) if *n < 1 => {
                let found = node.describe(self.text);
                self.error(
                    node.pos,
                    format!("expected a count of at least 1, found {found}"),
                );
                None
            }
            Kind::Int(n) => match u32::try_from(*n) {
                Ok(n) => Some(n),
                Err(_) => {
                    let found = node.describe(self.text);
                    self.error(
                        node.pos,
                        format!("expected a count up to {}, found {found}", u32::MAX),
                    );
                    None
                }
            },
            _ => {
                self.expected(node, "a count (an integer of at least 1)");
                None
            }
        }
    }

    fn labels(&mut self, node: &Node, context: &str) -> Option<BTreeMap<String, String>> {
        let entries = match &node.kind {
            Kind::Null => return Some(BTreeMap::new()),
            Kind::Map(entries) => self.entries(entries, &format!("in \"labels\" {}", of(context))),
            _ => {
                self.expected(node, "a mapping of labels like { host: local }");
                return None;
            }
        };
        let mut labels = BTreeMap::new();
        let mut ok = true;
        for entry in entries {
            match self.text(entry.value, "a label value (a string)") {
                Some(value) => {
                    labels.insert(entry.key, value);
                }
                None => ok = false,
            }
        }
        ok.then_some(labels)
    }

    fn services(&mut self, node: &Node) -> Vec<ServiceSpec> {
        let entries = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Map(entries) => self.entries(entries, "in \"services\""),
            Kind::Seq(_) => {
                self.expected(node, "a mapping of service names to services (not a list)");
                return Vec::new();
            }
            _ => {
                self.expected(node, "a mapping of service names to services");
                return Vec::new();
            }
        };
        let names: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in &entries {
            if !is_service_name(&entry.key) {
                let message = format!(
                    "invalid service name {}: expected letters, digits, \"_\", \"-\" and \".\", \
                     starting with a letter or digit",
                    raw::quote_short(&entry.key)
                );
                self.error(entry.key_node.pos, message);
            }
            parsed.push(self.service(&entry.key, entry.key_node.pos, entry.value));
        }
        self.check_dependencies(&names, &parsed);
        parsed
            .into_iter()
            .filter_map(|parsed| parsed.service)
            .collect()
    }

    /// One service; see [`ParsedService`].
    fn service(&mut self, name: &str, name_pos: Pos, node: &Node) -> ParsedService {
        let context = format!("in service {}", raw::quote_short(name));
        let expected = "a service: a mapping with at least \"run\"";
        let Some(mut fields) = self.fields(node, SERVICE_KEYS, &context, expected) else {
            return ParsedService {
                service: None,
                depends_on: Vec::new(),
            };
        };
        if matches!(node.kind, Kind::Null) {
            // `db:` with nothing after it: the missing keys are best reported at the name.
            fields.pos = name_pos;
        }
        let mut depends_on: Vec<(String, Pos)> = Vec::new();
        if let Some(node) = fields.get("depends_on") {
            for (dep, item) in self.text_list(node, "a service name", "a list of service names") {
                if !depends_on.iter().any(|(d, _)| *d == dep) {
                    depends_on.push((dep, item.pos));
                }
            }
        }
        let before = self.errors.len();
        let run = match fields.get("run") {
            Some(node) => self.command(node, "run", &context),
            None => {
                self.missing(&fields, "run", &context);
                None
            }
        };
        let ready = match fields.get("ready") {
            Some(node) => self.ready(node, &format!("in \"ready\" {}", of(&context))),
            None => Default::default(),
        };
        let timeout = fields.get("timeout").and_then(|n| self.timeout(n));
        let env = fields
            .get("env")
            .map(|n| self.env(n, &format!("in \"env\" {}", of(&context))));
        let cwd = fields.get("cwd").and_then(|n| self.cwd(n));
        let stop_signal = fields.get("stop_signal").and_then(|n| self.signal(n));
        let stop_grace = fields.get("stop_grace").and_then(|n| self.duration(n));
        let exit_codes = fields.get("exit_codes").and_then(|n| self.exit_codes(n));
        if self.errors.len() > before {
            return ParsedService {
                service: None,
                depends_on,
            };
        }
        let service = run.map(|run| ServiceSpec {
            name: name.to_owned(),
            run,
            ready,
            timeout,
            env: env.unwrap_or_default(),
            cwd,
            stop_signal,
            stop_grace,
            exit_codes,
            depends_on: depends_on.iter().map(|(d, _)| d.clone()).collect(),
        });
        ParsedService {
            service,
            depends_on,
        }
    }

    fn cwd(&mut self, node: &Node) -> Option<Template> {
        let text = self.non_empty_text(node, "a directory path")?;
        self.template_from(node, &text)
    }

    fn signal(&mut self, node: &Node) -> Option<Signal> {
        let refused = match &node.kind {
            Kind::Str(name) => match stop_signal(name) {
                Ok(signal) => return Some(signal),
                Err(refused) => Some(refused),
            },
            Kind::Int(number) => Some(Refused::Number(stop_signal_numbered(*number))),
            _ => None,
        };
        let hint = match (refused, &node.kind) {
            (Some(Refused::Number(Some(signal))), _) => format!("; write its name, \"{signal}\""),
            (Some(Refused::Number(None)), _) => "; write its name".to_owned(),
            (Some(Refused::Name), Kind::Str(name)) => {
                let bare = name.trim().to_ascii_uppercase();
                let bare = format!("SIG{}", bare.strip_prefix("SIG").unwrap_or(&bare));
                did_you_mean(&bare, stop_signal_names())
            }
            _ => String::new(),
        };
        let accepted = stop_signal_names().collect::<Vec<_>>().join(", ");
        let found = node.describe(self.text);
        self.error(
            node.pos,
            format!("expected a signal name ({accepted}), found {found}{hint}"),
        );
        None
    }

    fn exit_codes(&mut self, node: &Node) -> Option<Vec<i32>> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) if items.is_empty() => {
                self.error(
                    node.pos,
                    "expected at least one exit code, found an empty list",
                );
                return None;
            }
            Kind::Seq(items) => items.iter().collect(),
            Kind::Int(_) => vec![node],
            _ => {
                self.expected(node, "a list of exit codes like [0, 1]");
                return None;
            }
        };
        let mut codes = Vec::with_capacity(items.len());
        for item in items {
            match &item.kind {
                Kind::Int(code) if (0..=255).contains(code) => codes.push(*code as i32),
                _ => self.expected(item, "an exit code (an integer from 0 to 255)"),
            }
        }
        Some(codes)
    }

    /// Unknown `depends_on` names and cycles.
    fn check_dependencies(&mut self, names: &[String], parsed: &[ParsedService]) {
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(names.len());
        let mut edge_pos: Vec<Vec<Pos>> = Vec::with_capacity(names.len());
        for (
            i,
            ParsedService {
                depends_on: deps, ..
            },
        ) in parsed.iter().enumerate()
        {
            let mut targets = Vec::new();
            let mut positions = Vec::new();
            for (dep, pos) in deps {
                match index.get(dep.as_str()) {
                    Some(&target) => {
                        targets.push(target);
                        positions.push(*pos);
                    }
                    None => {
                        let others = names.iter().map(String::as_str).filter(|n| *n != names[i]);
                        let hint = match closest(dep, others) {
                            Some(s) => format!("; did you mean {s:?}?"),
                            None if names.len() <= 1 => "; no other service is defined".to_owned(),
                            None => format!("; defined services: {}", names.join(", ")),
                        };
                        let message = format!(
                            "unknown service {} in \"depends_on\" of service {}{hint}",
                            raw::quote_short(dep),
                            raw::quote_short(&names[i])
                        );
                        self.error(*pos, message);
                    }
                }
            }
            edges.push(targets);
            edge_pos.push(positions);
        }
        for (from, edge, message) in cycle_errors(names, &edges) {
            self.error(edge_pos[from][edge], message);
        }
    }

    fn steps(&mut self, node: &Node) -> Vec<Step> {
        let items = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Seq(items) => items,
            _ => {
                self.expected(node, "a list of steps like - run: make test");
                return Vec::new();
            }
        };
        let mut steps = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(step) = self.step(i + 1, item) {
                steps.push(step);
            }
        }
        steps
    }

    fn step(&mut self, number: usize, node: &Node) -> Option<Step> {
        let before = self.errors.len();
        let expected = "a step: a mapping with at least \"run\"";
        // Name the step in messages about its keys, even before its name is validated.
        let early_name = match &node.kind {
            Kind::Map(entries) => entries.iter().find_map(|(k, v)| match (&k.kind, &v.kind) {
                (Kind::Str(k), Kind::Str(v)) if k == "name" && !v.trim().is_empty() => Some(v),
                _ => None,
            }),
            _ => None,
        };
        let early_context = match early_name {
            Some(name) => format!("in step {}", raw::quote_short(name)),
            None => format!("in step {number}"),
        };
        let fields = self.fields(node, STEP_KEYS, &early_context, expected)?;
        let name = fields
            .get("name")
            .and_then(|n| self.non_empty_text(n, "a step name"));
        let context = match &name {
            Some(name) => format!("in step {}", raw::quote_short(name)),
            None => format!("in step {number}"),
        };
        let run = match fields.get("run") {
            Some(node) => self.command(node, "run", &context),
            None => {
                self.missing(&fields, "run", &context);
                None
            }
        };
        let timeout = fields.get("timeout").and_then(|n| self.timeout(n));
        let env = fields
            .get("env")
            .map(|n| self.env(n, &format!("in \"env\" {}", of(&context))));
        let cwd = fields.get("cwd").and_then(|n| self.cwd(n));
        let reports = fields
            .get("reports")
            .map(|n| self.text_list(n, "a report path", "a list of report paths"))
            .unwrap_or_default();
        if self.errors.len() > before {
            return None;
        }
        Some(Step {
            name: name.unwrap_or_else(|| format!("step {number}")),
            run: run?,
            timeout,
            env: env.unwrap_or_default(),
            cwd,
            reports: reports.into_iter().map(|(r, _)| r).collect(),
        })
    }

    fn when(&mut self, node: &Node) -> When {
        let expected = "a mapping with event and branch";
        let Some(fields) = self.fields(node, WHEN_KEYS, "in \"when\"", expected) else {
            return When::default();
        };
        let mut when = When::default();
        if let Some(node) = fields.get("event") {
            for (event, item) in self.text_list(node, "an event name", "a list of event names") {
                if EVENTS.contains(&event.as_str()) {
                    if !when.events.contains(&event) {
                        when.events.push(event);
                    }
                } else {
                    let hint = match closest(&event, EVENTS.iter().copied()) {
                        Some(s) => format!("; did you mean {s:?}?"),
                        None => String::new(),
                    };
                    let message = format!(
                        "unknown event {}: expected push, pull_request or manual{hint}",
                        raw::quote_short(&event)
                    );
                    self.error(item.pos, message);
                }
            }
        }
        if let Some(node) = fields.get("branch") {
            when.branches = self
                .text_list(
                    node,
                    "a branch name or glob",
                    "a list of branch names or globs",
                )
                .into_iter()
                .map(|(b, _)| b)
                .collect();
        }
        when
    }
}

/// Turns a context such as `in service "db"` into `of service "db"`, for nested contexts.
fn of(context: &str) -> String {
    match context.strip_prefix("in ") {
        Some(rest) => format!("of {rest}"),
        None => context.to_owned(),
    }
}

/// Service names appear on command lines and in logs: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
fn is_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

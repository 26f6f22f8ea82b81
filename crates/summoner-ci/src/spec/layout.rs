//! The block layout of a YAML text, read line by line, to explain a syntax error.
//!
//! The YAML parser reports where it noticed a problem, which is often lines after the
//! mistake: an unindented `timeout:` is a valid new key of the mapping above, and only the
//! next line, indented again, is refused. This module re-reads the text the way a person
//! does — which lines are keys and list items, at which indentation, under which key — and
//! finds the first line whose indentation breaks that structure, so the error can point at
//! it and say what indentation the line's neighbours have.
//!
//! It is a heuristic over text the parser has already refused, never a second parser:
//! anything it does not follow (explicit `?` keys, a document that starts with a flow
//! collection) makes it give up, and the parser's own message is used alone. It only looks
//! at lines up to the one after the parser's error, so it cannot blame an unrelated line
//! further down. A property test checks that it finds nothing to blame in text the parser
//! accepts.

use super::raw::{MAX_DEPTH, Pos, quote_short};

/// A likely mistake: where it is and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hint {
    pub pos: Pos,
    pub message: String,
}

/// Explains a syntax error the parser reported on `error_line` (1-based), if the layout
/// of the lines up to the next one shows a likely mistake.
pub(crate) fn explain(text: &str, error_line: usize) -> Option<Hint> {
    let mut scanner = Scanner {
        error_line,
        ..Scanner::default()
    };
    let last = error_line.saturating_add(1);
    for (i, line) in text.split('\n').enumerate() {
        let number = i + 1;
        if number > last {
            return None;
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let chars: Vec<char> = line.chars().collect();
        match scanner.line(number, &chars) {
            Step::Go => {}
            Step::Found(hint) => return Some(hint),
            Step::GiveUp => return None,
        }
    }
    // The text ended inside a quoted string or a flow collection.
    scanner.open.map(|open| open.unclosed(None))
}

/// What one line told the scanner.
enum Step {
    Go,
    Found(Hint),
    GiveUp,
}

/// One segment of the path from the document's root to a block.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Item(usize),
}

/// Names a block the way validation messages do: `service "web"`, `step 2`, `"env"`.
fn owner(path: &[Seg]) -> String {
    match path {
        [] => "the top level".to_owned(),
        [Seg::Key(k)] => quote_short(k),
        [Seg::Key(s), Seg::Key(name)] if s == "services" => {
            format!("service {}", quote_short(name))
        }
        [Seg::Key(s), Seg::Item(n)] if s == "steps" => format!("step {n}"),
        [Seg::Key(s), Seg::Item(n)] if s == "resources" => format!("resource {n}"),
        [parent @ .., Seg::Key(k)] => format!("{} of {}", quote_short(k), owner(parent)),
        [parent @ .., Seg::Item(n)] => format!("item {n} of {}", owner(parent)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LevelKind {
    Keys,
    Items,
}

/// An open block: the keys of a mapping or the items of a list, at one indentation.
#[derive(Debug, Clone)]
struct Level {
    indent: usize,
    kind: LevelKind,
    /// The path to the mapping or list this level holds.
    path: Vec<Seg>,
    /// The number of items seen so far (for an items level).
    items: usize,
}

impl Level {
    /// "the keys of service "web"", "the top-level keys", "the items of "steps"".
    fn phrase(&self) -> String {
        match (self.kind, self.path.is_empty()) {
            (LevelKind::Keys, true) => "the top-level keys".to_owned(),
            (LevelKind::Items, true) => "the top-level items".to_owned(),
            (LevelKind::Keys, false) => format!("the keys of {}", owner(&self.path)),
            (LevelKind::Items, false) => format!("the items of {}", owner(&self.path)),
        }
    }
}

/// The first thing on a line, after its indentation.
#[derive(Debug, Clone)]
enum Token {
    /// `key:`, with what follows the colon.
    Key { name: String, value: Value },
    /// `- `, possibly followed by a key or a value on the same line.
    Item { rest: Option<Box<(usize, Token)>> },
    /// Anything else: a plain, quoted or flow scalar.
    Scalar { text: String },
}

/// What follows a key's colon (or a list item's dash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Nothing: the block below is the value.
    Opener,
    /// A value on the same line.
    Inline,
}

impl Token {
    /// The token as the user wrote it, for messages: `"timeout:"`, `"- name:"`.
    fn shown(&self) -> String {
        quote_short(&self.written())
    }

    fn written(&self) -> String {
        match self {
            Token::Key { name, .. } => format!("{name}:"),
            Token::Item { rest: None } => "-".to_owned(),
            Token::Item { rest: Some(rest) } => format!("- {}", rest.1.written()),
            Token::Scalar { text } => text.clone(),
        }
    }
}

/// A quoted string or flow collection that did not end on the line that opened it.
#[derive(Debug, Clone)]
struct Open {
    pos: Pos,
    /// The opening character: `"`, `'`, `{` or `[`.
    opener: char,
    /// The indentation of the key (or item) whose value this is; a line indented no more
    /// than this cannot continue it.
    owner_indent: usize,
    flow: Flow,
    /// The first line after the opener indented no more than its key.
    dedented_at: Option<usize>,
}

impl Open {
    fn unclosed(&self, next_line: Option<usize>) -> Hint {
        let (what, expected) = match self.opener {
            '{' => ("\"{\"", "\"}\"".to_owned()),
            '[' => ("\"[\"", "\"]\"".to_owned()),
            '"' => ("string", "a closing double quote".to_owned()),
            _ => ("string", "a closing single quote".to_owned()),
        };
        let message = match next_line {
            Some(line) => format!(
                "unclosed {what}: expected {expected} before line {line}, which is back at \
                 the indentation of its key"
            ),
            None => format!("unclosed {what}: expected {expected} before the end of the file"),
        };
        Hint {
            pos: self.pos,
            message,
        }
    }
}

/// The state of a flow collection or quoted string being read across characters.
#[derive(Debug, Clone, Default)]
struct Flow {
    brackets: Vec<char>,
    quote: Option<char>,
    /// The last character read that is not whitespace.
    last: Option<char>,
}

impl Flow {
    fn is_open(&self) -> bool {
        !self.brackets.is_empty() || self.quote.is_some()
    }

    /// Reads `chars` from `from`; returns the index after the construct's end, or `None`
    /// if it is still open at the end of the line (or a comment).
    fn read(&mut self, chars: &[char], from: usize) -> Option<usize> {
        let mut i = from;
        while i < chars.len() {
            let c = chars[i];
            match self.quote {
                Some('"') => {
                    if c == '\\' {
                        i += 1;
                    } else if c == '"' {
                        self.quote = None;
                    }
                }
                Some(_) => {
                    if c == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            i += 1;
                        } else {
                            self.quote = None;
                        }
                    }
                }
                None => {
                    let after_space = i == 0 || chars[i - 1].is_whitespace();
                    match c {
                        '#' if after_space => return None,
                        '{' | '[' => self.brackets.push(c),
                        '}' | ']' => {
                            self.brackets.pop();
                        }
                        '"' | '\'' if starts_scalar(self.last, after_space) => {
                            self.quote = Some(c);
                        }
                        _ => {}
                    }
                }
            }
            if !c.is_whitespace() {
                self.last = Some(c);
            }
            i += 1;
            if !self.is_open() {
                return Some(i);
            }
        }
        None
    }
}

/// Whether a quote starts a quoted scalar (rather than sitting inside a plain one, as in
/// `don't` or `a 'b`), given the last character before it that is not whitespace.
fn starts_scalar(last: Option<char>, after_space: bool) -> bool {
    match last {
        None | Some('[' | '{' | ',') => true,
        Some(':' | '-' | '?') => after_space,
        Some(_) => false,
    }
}

/// A line that opened a block, waiting for its first child.
#[derive(Debug, Clone)]
struct Parent {
    indent: usize,
    path: Vec<Seg>,
    /// Whether the parent is a key (a list may then start at the key's own indentation).
    is_key: bool,
}

/// A line the scanner may blame once it sees the line after it.
#[derive(Debug, Clone)]
struct Previous {
    pos: Pos,
    token: Token,
    indent: usize,
    /// Levels the line closed by being indented less than the line before it.
    closed: Vec<Level>,
    /// Whether the line was a lone plain scalar where a block's first line goes.
    lone_scalar: bool,
}

#[derive(Debug, Default)]
struct Scanner {
    levels: Vec<Level>,
    parent: Option<Parent>,
    previous: Option<Previous>,
    /// Inside a block scalar (`|`, `>`): lines indented more than this belong to it.
    block_scalar: Option<usize>,
    open: Option<Open>,
    /// The line on which the parser reported its error.
    error_line: usize,
}

fn spaces(n: usize) -> String {
    if n == 1 {
        "1 space".to_owned()
    } else {
        format!("{n} spaces")
    }
}

fn found(line: usize, column: usize, message: String) -> Step {
    Step::Found(Hint {
        pos: Pos {
            line,
            column: column + 1,
        },
        message,
    })
}

impl Scanner {
    fn line(&mut self, number: usize, chars: &[char]) -> Step {
        let blank = chars.iter().all(|c| c.is_whitespace());
        let indent = chars.iter().take_while(|&&c| c == ' ').count();
        if let Some(parent_indent) = self.block_scalar {
            if blank || indent > parent_indent {
                return Step::Go;
            }
            self.block_scalar = None;
        }
        if let Some(open) = &mut self.open {
            if blank {
                return Step::Go;
            }
            // The parser lets a quoted string or flow collection go on over lines indented
            // no more than its key, so such a line is only suspicious: the opener is blamed
            // if the parser fails while it is still open.
            if indent <= open.owner_indent && open.dedented_at.is_none() {
                open.dedented_at = Some(number);
            }
            if open.flow.read(chars, 0).is_some() {
                self.open = None;
            } else if number >= self.error_line
                && let Some(line) = open.dedented_at
            {
                return Step::Found(open.unclosed(Some(line)));
            }
            return Step::Go;
        }
        if blank {
            return Step::Go;
        }
        let lead = chars.iter().take_while(|&&c| c == ' ' || c == '\t').count();
        if chars[lead] == '#' {
            return Step::Go;
        }
        if let Some(tab) = chars[..lead].iter().position(|&c| c == '\t') {
            if self.levels.is_empty() {
                // Before the first node a tab is only separation, and the parser allows it.
                return Step::GiveUp;
            }
            return found(
                number,
                tab,
                "a tab in the indentation: YAML indents with spaces only".to_owned(),
            );
        }
        if indent == 0 && (starts_with(chars, "---") || starts_with(chars, "...")) {
            let rest = &chars[3..];
            return if rest.iter().all(|c| c.is_whitespace()) {
                Step::Go
            } else {
                Step::GiveUp
            };
        }
        if indent == 0 && chars[0] == '%' {
            return Step::Go;
        }
        let Some(token) = self.token(number, chars, indent, 0) else {
            return Step::GiveUp;
        };
        self.place(number, indent, token)
    }

    /// Reads the token at `at`, recording a block scalar or an unclosed construct it opens.
    /// `depth` counts the dashes and anchors before it on the line.
    fn token(&mut self, number: usize, chars: &[char], at: usize, depth: usize) -> Option<Token> {
        // A line of thousands of `- ` is refused by the parser for its depth; reading it
        // here must not recurse that deep either.
        if depth > MAX_DEPTH {
            return None;
        }
        let c = chars[at];
        if matches!(c, '?' | ':') && chars.get(at + 1).is_none_or(|c| c.is_whitespace()) {
            // Explicit keys and values are too rare in build specs to be worth following.
            return None;
        }
        if c == '&' || c == '!' {
            // An anchor or a tag: the token is what follows it.
            let end = (at..chars.len())
                .find(|&i| chars[i] == ' ')
                .unwrap_or(chars.len());
            let next = (end..chars.len()).find(|&i| chars[i] != ' ')?;
            return if chars[next] == '#' {
                None
            } else {
                self.token(number, chars, next, depth + 1)
            };
        }
        if c == '-' && chars.get(at + 1).is_none_or(|c| *c == ' ') {
            let next = (at + 1..chars.len()).find(|&i| chars[i] != ' ');
            let rest = match next {
                Some(i) if chars[i] != '#' => {
                    let token = self.token(number, chars, i, depth + 1)?;
                    Some(Box::new((i, token)))
                }
                _ => None,
            };
            if let Some(rest) = &rest
                && let Token::Scalar { text } = &rest.1
                && is_block_indicator(text)
            {
                self.block_scalar = Some(at);
            }
            return Some(Token::Item { rest });
        }
        if let Some((name, after)) = key_at(chars, at) {
            let value_at = (after..chars.len()).find(|&i| chars[i] != ' ' && chars[i] != '\t');
            let value = match value_at {
                None => Value::Opener,
                Some(i) if chars[i] == '#' => Value::Opener,
                Some(i) => self.value(number, chars, i, at),
            };
            return Some(Token::Key { name, value });
        }
        if matches!(c, '"' | '\'' | '{' | '[') {
            self.flow(number, chars, at, at);
        }
        let text: String = chars[at..].iter().collect::<String>().trim_end().to_owned();
        Some(Token::Scalar { text })
    }

    /// Reads a key's value starting at `at`; `owner` is the key's column.
    fn value(&mut self, number: usize, chars: &[char], mut at: usize, owner: usize) -> Value {
        // An anchor or a tag alone leaves the value to the block below.
        while matches!(chars[at], '&' | '!') {
            let end = (at..chars.len())
                .find(|&i| chars[i] == ' ')
                .unwrap_or(chars.len());
            match (end..chars.len()).find(|&i| chars[i] != ' ') {
                Some(next) if chars[next] != '#' => at = next,
                _ => return Value::Opener,
            }
        }
        match chars[at] {
            '|' | '>' => {
                let text: String = chars[at..].iter().collect();
                if is_block_indicator(&text) {
                    self.block_scalar = Some(owner);
                }
            }
            '"' | '\'' | '{' | '[' => self.flow(number, chars, at, owner),
            _ => {}
        }
        Value::Inline
    }

    /// Reads a quoted string or flow collection starting at `at`, remembering it if it
    /// goes on past this line.
    fn flow(&mut self, number: usize, chars: &[char], at: usize, owner: usize) {
        let mut flow = Flow::default();
        if flow.read(chars, at).is_none() && flow.is_open() {
            self.open = Some(Open {
                pos: Pos {
                    line: number,
                    column: at + 1,
                },
                opener: chars[at],
                owner_indent: owner,
                flow,
                dedented_at: None,
            });
        }
    }

    /// Fits a line's token into the open blocks, or explains why it does not fit.
    fn place(&mut self, number: usize, indent: usize, token: Token) -> Step {
        let previous = self.previous.take();
        let parent = self.parent.take();
        let mut closed = Vec::new();
        let child_of = parent.filter(|p| {
            indent > p.indent
                || (indent == p.indent && p.is_key && matches!(token, Token::Item { .. }))
        });
        if let Some(parent) = child_of {
            let kind = match token {
                Token::Key { .. } => LevelKind::Keys,
                Token::Item { .. } => LevelKind::Items,
                Token::Scalar { .. } => {
                    // A value on its own line under its key.
                    self.previous = Some(Previous {
                        pos: Pos {
                            line: number,
                            column: indent + 1,
                        },
                        token,
                        indent,
                        closed,
                        lone_scalar: true,
                    });
                    return Step::Go;
                }
            };
            self.levels.push(Level {
                indent,
                kind,
                path: parent.path,
                items: 0,
            });
        } else if self.levels.is_empty() {
            let kind = match token {
                Token::Key { .. } => LevelKind::Keys,
                Token::Item { .. } => LevelKind::Items,
                // A document that is a scalar or a flow collection has no block layout.
                Token::Scalar { .. } => return Step::GiveUp,
            };
            self.levels.push(Level {
                indent,
                kind,
                path: Vec::new(),
                items: 0,
            });
        } else {
            while self.levels.last().is_some_and(|l| l.indent > indent) {
                closed.extend(self.levels.pop());
            }
            // A list written at its key's indentation ends at the next key.
            let n = self.levels.len();
            if n >= 2
                && self.levels[n - 1].kind == LevelKind::Items
                && self.levels[n - 1].indent == indent
                && self.levels[n - 2].indent == indent
                && !matches!(token, Token::Item { .. })
            {
                closed.extend(self.levels.pop());
            }
            let Some(top) = self.levels.last() else {
                let first = closed.last().map_or(0, |l| l.indent);
                return found(
                    number,
                    indent,
                    format!(
                        "{} is indented {}, less than the first line of the file ({})",
                        token.shown(),
                        spaces(indent),
                        first
                    ),
                );
            };
            if top.indent < indent {
                if let Some(inner) = closed.last() {
                    return found(
                        number,
                        indent,
                        format!(
                            "{} is indented {}, but {} are indented {} (and {} {})",
                            token.shown(),
                            spaces(indent),
                            inner.phrase(),
                            inner.indent,
                            top.phrase(),
                            top.indent
                        ),
                    );
                }
                return self.deeper(number, indent, token, previous);
            }
            if let Some(hint) = self.sibling(number, indent, &token, &closed) {
                return hint;
            }
        }
        self.enter(number, indent, token, closed);
        Step::Go
    }

    /// A line indented more than every open block, after a line that opened none.
    fn deeper(
        &mut self,
        number: usize,
        indent: usize,
        token: Token,
        previous: Option<Previous>,
    ) -> Step {
        let Token::Key { .. } = token else {
            // A plain scalar may go on over more indented lines; the parser decides.
            self.previous = previous;
            return Step::Go;
        };
        let top = self.levels.last().cloned();
        if let Some(prev) = previous {
            if let Some(level) = prev.closed.iter().find(|l| l.indent == indent) {
                return found(
                    prev.pos.line,
                    prev.indent,
                    format!(
                        "{} is indented {}, but the line after it goes on at {} like {} above it",
                        prev.token.shown(),
                        spaces(prev.indent),
                        indent,
                        level.phrase()
                    ),
                );
            }
            if prev.lone_scalar {
                let like = if indent == prev.indent {
                    "like the line after it"
                } else {
                    "above the lines indented under it"
                };
                return found(
                    prev.pos.line,
                    prev.indent,
                    format!(
                        "expected a key followed by \":\" {like}, found {}",
                        prev.token.shown()
                    ),
                );
            }
        }
        let level = top.map_or_else(String::new, |top| {
            format!(", but {} are indented {}", top.phrase(), top.indent)
        });
        found(
            number,
            indent,
            format!(
                "{} is indented {}{level}; only a key with nothing after its \":\" can have \
                 keys indented under it",
                token.shown(),
                spaces(indent)
            ),
        )
    }

    /// Checks a line at the indentation of the innermost open block.
    fn sibling(
        &self,
        number: usize,
        indent: usize,
        token: &Token,
        closed: &[Level],
    ) -> Option<Step> {
        let top = self.levels.last()?;
        let message = match (top.kind, token) {
            (LevelKind::Keys, Token::Key { .. }) | (LevelKind::Items, Token::Item { .. }) => {
                return None;
            }
            (LevelKind::Keys, Token::Item { .. }) => {
                let items = closed
                    .iter()
                    .rev()
                    .chain(self.levels.iter().rev())
                    .find(|l| l.kind == LevelKind::Items && l.indent != indent);
                match items {
                    Some(items) => format!(
                        "{} is indented {}, like {}, but {} are indented {}",
                        token.shown(),
                        spaces(indent),
                        top.phrase(),
                        items.phrase(),
                        items.indent
                    ),
                    None => format!(
                        "expected a key like {}, found the list item {}",
                        top.phrase(),
                        token.shown()
                    ),
                }
            }
            (LevelKind::Items, Token::Key { .. }) => {
                match closed.iter().rev().find(|l| l.kind == LevelKind::Keys) {
                    Some(keys) => format!(
                        "{} is indented {}, like {}, but {} are indented {}",
                        token.shown(),
                        spaces(indent),
                        top.phrase(),
                        keys.phrase(),
                        keys.indent
                    ),
                    None => format!(
                        "expected a list item (\"- \") like {}, found the key {}",
                        top.phrase(),
                        token.shown()
                    ),
                }
            }
            (LevelKind::Keys, Token::Scalar { .. }) => format!(
                "expected a key followed by \":\" like {}, found {}",
                top.phrase(),
                token.shown()
            ),
            (LevelKind::Items, Token::Scalar { .. }) => format!(
                "expected a list item (\"- \") like {}, found {}",
                top.phrase(),
                token.shown()
            ),
        };
        Some(found(number, indent, message))
    }

    /// Records a line that fits: counts its item, opens the blocks it starts.
    fn enter(&mut self, number: usize, indent: usize, token: Token, closed: Vec<Level>) {
        let mut column = indent;
        let mut current = &token;
        while let Some(top) = self.levels.last_mut() {
            let mut path = top.path.clone();
            match current {
                Token::Key { name, value } => {
                    path.push(Seg::Key(name.clone()));
                    if *value == Value::Opener {
                        self.parent = Some(Parent {
                            indent: column,
                            path,
                            is_key: true,
                        });
                    }
                    break;
                }
                Token::Scalar { .. } => break,
                Token::Item { rest } => {
                    top.items += 1;
                    path.push(Seg::Item(top.items));
                    match rest {
                        None => {
                            self.parent = Some(Parent {
                                indent: column,
                                path,
                                is_key: false,
                            });
                            break;
                        }
                        Some(rest) => {
                            let (at, inner) = &**rest;
                            let kind = match inner {
                                Token::Key { .. } => LevelKind::Keys,
                                Token::Item { .. } => LevelKind::Items,
                                Token::Scalar { .. } => break,
                            };
                            self.levels.push(Level {
                                indent: *at,
                                kind,
                                path,
                                items: 0,
                            });
                            column = *at;
                            current = inner;
                        }
                    }
                }
            }
        }
        self.previous = Some(Previous {
            pos: Pos {
                line: number,
                column: indent + 1,
            },
            token,
            indent,
            closed,
            lone_scalar: false,
        });
    }
}

fn starts_with(chars: &[char], prefix: &str) -> bool {
    prefix
        .chars()
        .enumerate()
        .all(|(i, p)| chars.get(i) == Some(&p))
}

/// `|`, `>-`, `|2+` and the like, optionally followed by a comment.
fn is_block_indicator(text: &str) -> bool {
    let text = text.split(" #").next().unwrap_or("").trim_end();
    let mut chars = text.chars();
    matches!(chars.next(), Some('|' | '>')) && chars.all(|c| matches!(c, '-' | '+' | '1'..='9'))
}

/// A block mapping key starting at `at`: its name and the index after its colon.
fn key_at(chars: &[char], at: usize) -> Option<(String, usize)> {
    let is_end = |i: usize| chars.get(i).is_none_or(|c| *c == ' ' || *c == '\t');
    match chars[at] {
        q @ ('"' | '\'') => {
            let mut flow = Flow {
                quote: Some(q),
                ..Flow::default()
            };
            let end = flow.read(chars, at + 1)?;
            let colon = (end..chars.len()).find(|&i| chars[i] != ' ')?;
            (chars[colon] == ':' && is_end(colon + 1)).then(|| {
                let name: String = chars[at + 1..end - 1].iter().collect();
                (name, colon + 1)
            })
        }
        '{' | '[' | '#' | '|' | '>' | '&' | '!' => None,
        _ => {
            for i in at..chars.len() {
                match chars[i] {
                    ':' if is_end(i + 1) => {
                        let name: String = chars[at..i].iter().collect();
                        return Some((name.trim_end().to_owned(), i + 1));
                    }
                    '#' if chars[i - 1].is_whitespace() => return None,
                    _ => {}
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spec::raw::parse_document;

    /// The hint for `text`, which the parser must refuse.
    fn hint(text: &str) -> Hint {
        let err = parse_document(text).expect_err(text);
        let line = err.pos.expect("a position").line;
        explain(text, line).unwrap_or_else(|| panic!("no hint for {text:?} ({err:?})"))
    }

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn an_unindented_key_is_blamed_not_the_line_after_it() {
        let text = "services:\n  web:\n    run: x\n  timeout: 30s\n    depends_on: [db]\n";
        let hint = hint(text);
        assert_eq!(hint.pos, at(4, 3));
        assert_eq!(
            hint.message,
            "\"timeout:\" is indented 2 spaces, but the line after it goes on at 4 like the \
             keys of service \"web\" above it"
        );
    }

    #[test]
    fn a_key_between_two_levels_names_both() {
        let hint = hint("services:\n  web:\n    run: x\n   timeout: 30s\n");
        assert_eq!(hint.pos, at(4, 4));
        assert_eq!(
            hint.message,
            "\"timeout:\" is indented 3 spaces, but the keys of service \"web\" are indented 4 \
             (and the keys of \"services\" 2)"
        );
    }

    #[test]
    fn list_items_are_named_by_their_list() {
        let text = "steps:\n  - run: a\n    timeout: 1m\n    - run: b\n";
        let hint = hint(text);
        assert_eq!(hint.pos, at(4, 5));
        assert!(hint.message.contains("like the keys of step 1"), "{hint:?}");
        assert!(
            hint.message
                .ends_with("the items of \"steps\" are indented 2"),
            "{hint:?}"
        );
    }

    #[test]
    fn a_flow_collection_may_close_at_its_keys_indentation() {
        // Valid YAML: nothing to explain, even asked about its last line.
        let text = "a: {\n  b: 1\n}\nc: [\n  1,\n]\n";
        assert!(parse_document(text).is_ok());
        assert_eq!(explain(text, 6), None);
    }

    /// Valid YAML that earlier versions of the scanner blamed, found by
    /// `valid_yaml_has_nothing_to_explain` (its seeds are in proptest-regressions/).
    #[test]
    fn valid_yaml_found_by_the_property_test_has_nothing_to_explain() {
        for text in [
            // A flow mapping whose second line goes back to the key's indentation.
            "a:\n  b: { o\n  utput: 'x' }\n  c: d\n",
            // Quotes inside plain scalars of a flow mapping.
            "a: { b: c, d:' e }\n",
            "a: { b: c, d: e '}\n",
            // An anchor before a key.
            "a:\n  &x b: c\n  d: e\n",
            // An implicit null key.
            "a: b\n: c:\n  - d\n",
            // A tab before the first node is separation.
            "\ta:\n  b: c\n",
            // A double-quoted string closed at column 1.
            "a:\n  b: \"x\n\"\n",
        ] {
            let lines = text.split('\n').count();
            assert!(parse_document(text).is_ok(), "{text:?}");
            assert_eq!(explain(text, lines), None, "{text:?}");
        }
    }

    #[test]
    fn block_scalars_are_skipped() {
        let text = "steps:\n  - run: |\n      echo a\n      \tnot indentation\n      b: c\n";
        assert!(parse_document(text).is_ok(), "{:?}", parse_document(text));
        assert_eq!(explain(text, 5), None);
    }

    #[test]
    fn deep_lines_make_it_give_up_without_recursing() {
        let text = format!("a:\n  b: c\n {}x\n", "- ".repeat(100_000));
        assert_eq!(explain(&text, 3), None);
    }

    #[test]
    fn explicit_keys_make_it_give_up() {
        assert_eq!(explain("? a\n: b\n  c: d\n", 3), None);
    }

    #[test]
    fn an_unclosed_flow_at_the_end_of_the_file_is_named() {
        let hint = hint("services:\n  a:\n    run: [x, y\n");
        assert_eq!(hint.pos, at(3, 10));
        assert_eq!(
            hint.message,
            "unclosed \"[\": expected \"]\" before the end of the file"
        );
    }

    /// Valid YAML the scanner must read without finding a mistake.
    const VALID: &[&str] = &[
        include_str!("../../tests/specs/good/design_md.yml"),
        include_str!("../../tests/specs/good/brief_full.yml"),
        include_str!("../../tests/specs/good/ready_kinds.yml"),
        include_str!("../../tests/specs/good/services_only.yml"),
        include_str!("../../tests/specs/good/anchors_and_values.yml"),
    ];

    const FRAGMENTS: &[&str] = &[
        ":", ": ", "- ", "-", "{", "}", "[", "]", ",", "\"", "'", "\n", " ", "  ", "\t", "#", "|",
        ">", "&a ", "*a", "!!str ", "---\n", "x", "k: v", "\n  ", "\n- ",
    ];

    fn mutate(text: &str, edits: &[(usize, usize, bool)]) -> String {
        let mut text: Vec<char> = text.chars().collect();
        for &(at, fragment, delete) in edits {
            let at = at % (text.len() + 1);
            if delete {
                let end = (at + fragment % 8 + 1).min(text.len());
                text.drain(at..end);
            } else {
                let fragment = FRAGMENTS[fragment % FRAGMENTS.len()];
                text.splice(at..at, fragment.chars());
            }
        }
        text.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            crate::spec::layout::tests::cases(256)
        ))]

        /// Text the parser accepts has no layout mistake: the scanner's reading agrees
        /// with the parser's wherever the parser has nothing to say.
        #[test]
        fn valid_yaml_has_nothing_to_explain(
            file in 0..VALID.len(),
            edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 0..4),
        ) {
            let text = mutate(VALID[file], &edits);
            if parse_document(&text).is_ok() {
                let lines = text.split('\n').count();
                prop_assert_eq!(explain(&text, lines), None, "{:?}", text);
            }
        }

        /// Any text: a hint points inside it.
        #[test]
        fn hints_point_inside_the_text(
            file in 0..VALID.len(),
            edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..6),
        ) {
            let text = mutate(VALID[file], &edits);
            let lines: Vec<&str> = text.split('\n').collect();
            if let Some(hint) = explain(&text, lines.len()) {
                prop_assert!(hint.pos.line >= 1 && hint.pos.line <= lines.len());
                let width = lines[hint.pos.line - 1].chars().count();
                prop_assert!(hint.pos.column >= 1 && hint.pos.column <= width + 1, "{:?}", hint);
                prop_assert!(!hint.message.contains('\n'));
            }
        }
    }

    /// The number of cases: `SUMMONER_FUZZ_CASES`, else `PROPTEST_CASES`, else `default`
    /// (see docs/fuzzing.md).
    pub(crate) fn cases(default: u32) -> u32 {
        ["SUMMONER_FUZZ_CASES", "PROPTEST_CASES"]
            .iter()
            .find_map(|name| std::env::var(name).ok()?.parse().ok())
            .unwrap_or(default)
    }
}

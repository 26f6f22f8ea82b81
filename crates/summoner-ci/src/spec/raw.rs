//! The YAML document as a tree of positioned nodes, before any validation.
//!
//! Deserializing straight into typed structs would stop at the first wrong type. Instead
//! serde-saphyr builds this loosely typed tree, every node wrapped in
//! [`serde_saphyr::Spanned`] for its position, and `validate` walks it collecting every
//! problem. Duplicate keys are passed through (not rejected by the deserializer, not
//! collapsed) so that validation can report each one with its position.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Location, MessageFormatter, NonFiniteFloatPolicy, Spanned};

/// The deepest nesting of mappings and lists accepted.
pub(crate) const MAX_DEPTH: usize = 24;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One YAML node with its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Where the node is used: for an alias (`*a`), the alias, not the anchor.
    pub pos: Pos,
    /// Byte range of the node's source text (of the anchored node for an alias), when known.
    pub src: Option<Range<usize>>,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, duplicates included.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error (or a resource limit hit while reading the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Parses a single YAML document into a [`Node`] tree.
///
/// An empty document (nothing, comments only, `---`) is a `Null` node.
pub(crate) fn parse_document(text: &str) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    // YAML 1.2 booleans only: `yes`/`no`/`on`/`off` stay strings, as users of modern
    // YAML tools expect.
    options.strict_booleans = true;
    // `.inf` and the like become strings, which validation then refuses with a position,
    // rather than aborting the whole parse.
    options.non_finite_float_policy = NonFiniteFloatPolicy::AsString;
    options.with_snippet = false;
    // Every node costs a few serde frames, and unoptimised builds spend tens of kilobytes of
    // stack per level; a spec needs about eight levels, so refuse deep nesting long before
    // a 2 MiB thread stack (a test thread, a tokio worker) could run out.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        if let serde_saphyr::Error::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
            location,
        } = err.without_snippet()
        {
            return SyntaxError {
                pos: pos_of(location),
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            };
        }
        let message = serde_saphyr::UserMessageFormatter.format_message(&err);
        SyntaxError {
            pos: err.location().and_then(|l| pos_of(&l)),
            // The formatter's output is not sanitised; one error per line needs one line.
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    })
}

fn pos_of(location: &Location) -> Option<Pos> {
    let line = usize::try_from(location.line()).ok()?;
    let column = usize::try_from(location.column()).ok()?;
    (line > 0 && column > 0).then_some(Pos { line, column })
}

fn src_of(location: &Location) -> Option<Range<usize>> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    Some(start..start.checked_add(len)?)
}

impl Node {
    /// The node's source text, for scalars whose position is known.
    pub fn source<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.src.clone().and_then(|r| text.get(r))
    }

    /// A short description for "found ..." in messages: the scalar as written, or the
    /// kind of collection.
    pub fn describe(&self, text: &str) -> String {
        let written = || {
            self.source(text)
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.contains('\n'))
                .map(str::to_owned)
        };
        match &self.kind {
            Kind::Null => written().map_or_else(|| "nothing".to_owned(), |s| s.to_owned()),
            Kind::Bool(b) => written().unwrap_or_else(|| b.to_string()),
            Kind::Int(i) => written().unwrap_or_else(|| i.to_string()),
            Kind::Float(f) => written().unwrap_or_else(|| f.to_string()),
            Kind::Str(s) => quote_short(s),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The text of a string, number or boolean scalar (numbers and booleans as written);
    /// `None` for null and collections.
    pub fn scalar_text(&self, text: &str) -> Option<String> {
        // A quoted source means an explicit tag such as `!!int "5"`: use the value instead.
        let written = || {
            self.source(text)
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.starts_with(['"', '\'']))
        };
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Bool(b) => Some(written().map_or_else(|| b.to_string(), str::to_owned)),
            Kind::Int(i) => Some(written().map_or_else(|| i.to_string(), str::to_owned)),
            Kind::Float(f) => Some(written().map_or_else(|| f.to_string(), str::to_owned)),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }
}

/// `"text"` with escapes, shortened to keep an error on one readable line.
pub(crate) fn quote_short(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        let pos = pos_of(&spanned.referenced)
            .or_else(|| pos_of(&spanned.defined))
            .unwrap_or(Pos { line: 0, column: 0 });
        Ok(Node {
            kind: spanned.value,
            pos,
            src: src_of(&spanned.defined),
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        Kind::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        // Out of i128's range only past 1.7e38; such a number is wrong wherever it appears.
        Ok(i128::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }

    fn visit_char<E>(self, v: char) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            Kind::Map(entries) => entries,
            other => panic!("expected a map, got {other:?}"),
        }
    }

    #[test]
    fn empty_documents_are_null() {
        for text in ["", "# only a comment\n", "---\n", "\n\n"] {
            assert!(
                matches!(parse_document(text).unwrap().kind, Kind::Null),
                "{text:?}"
            );
        }
    }

    #[test]
    fn nodes_carry_positions() {
        let doc = parse_document("a:\n  b: [1, x]\n").unwrap();
        let (a, inner) = &map(&doc)[0];
        assert_eq!(a.pos, Pos { line: 1, column: 1 });
        let (b, list) = &map(inner)[0];
        assert_eq!(b.pos, Pos { line: 2, column: 3 });
        let Kind::Seq(items) = &list.kind else {
            panic!()
        };
        assert_eq!(
            items[1].pos,
            Pos {
                line: 2,
                column: 10
            }
        );
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let doc = parse_document("a: 1\na: 2\n").unwrap();
        assert_eq!(map(&doc).len(), 2);
    }

    #[test]
    fn scalars_keep_their_written_text() {
        let text = "a: 1.50\nb: yes\nc: 0x1F\nd: true\n";
        let doc = parse_document(text).unwrap();
        let values: Vec<_> = map(&doc)
            .iter()
            .map(|(_, v)| v.scalar_text(text).unwrap())
            .collect();
        assert_eq!(values, ["1.50", "yes", "0x1F", "true"]);
        assert!(matches!(map(&doc)[1].1.kind, Kind::Str(_)));
        assert!(matches!(map(&doc)[3].1.kind, Kind::Bool(true)));
    }

    #[test]
    fn tagged_scalars_use_their_value() {
        let text = "a: !!int \"5\"\nb: !!str 5\nc: !!float 1\n";
        let doc = parse_document(text).unwrap();
        let values: Vec<_> = map(&doc)
            .iter()
            .map(|(_, v)| v.scalar_text(text).unwrap())
            .collect();
        assert_eq!(values, ["5", "5", "1"]);
    }

    #[test]
    fn aliases_point_at_their_use() {
        let doc = parse_document("a: &x 1\nb: *x\n").unwrap();
        assert_eq!(map(&doc)[1].1.pos, Pos { line: 2, column: 4 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_document("a: [1\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
        assert!(!err.message.contains('\n'));
        let err = parse_document("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn non_finite_floats_are_strings() {
        let doc = parse_document("a: .inf\n").unwrap();
        assert!(matches!(&map(&doc)[0].1.kind, Kind::Str(s) if s == ".inf"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        // Right at the limit, on this 2 MiB test thread, in a debug build.
        let depth = MAX_DEPTH;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_document(&text).is_ok());
        let text: String = (0..depth)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(parse_document(&text).is_ok());
        let text = format!("{}{{a: [x]}}", "- ".repeat(depth - 2));
        assert!(parse_document(&text).is_ok());
        // Past it.
        let text: String = (0..30)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let err = parse_document(&text).unwrap_err();
        assert_eq!(err.message, "nested deeper than 24 levels");
        assert_eq!(
            err.pos,
            Some(Pos {
                line: 25,
                column: 25
            })
        );
        let text = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse_document(&text).is_err());
        let text: String = (0..3000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(parse_document(&text).is_err());
        let text = format!("{}x", "- ".repeat(3000));
        assert!(parse_document(&text).is_err());
    }
}

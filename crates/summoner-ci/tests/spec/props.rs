//! Property tests: the parser never panics and always points inside the file; templates
//! round-trip their escapes.
//!
//! These double as the fuzzer of `.summoner.yml` (docs/fuzzing.md): arbitrary bytes and
//! text, YAML-like text, and valid files mutated character by character and line by line
//! (indented, dedented, tab-indented, a colon, bracket or quote removed). The number of
//! cases comes from `SUMMONER_FUZZ_CASES` (or proptest's `PROPTEST_CASES`).

use proptest::prelude::*;
use summoner_ci::spec::{Spec, Template};

const GOOD: &[&str] = &[
    include_str!("../specs/good/design_md.yml"),
    include_str!("../specs/good/brief_full.yml"),
    include_str!("../specs/good/ready_kinds.yml"),
    include_str!("../specs/good/services_only.yml"),
    include_str!("../specs/good/anchors_and_values.yml"),
];

/// Fragments that matter to YAML or to the format, for mutations to splice in.
const FRAGMENTS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "\n",
    "  ",
    "\t",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "${",
    "${X",
    "}",
    "$$",
    "#",
    "|",
    ">",
    "~",
    "null",
    "0",
    "-1",
    "1e999",
    ".inf",
    "!!str ",
    "!!int ",
    "!tag ",
    "---\n",
    "...\n",
    "\\",
    "\u{feff}",
    "é",
    "run: ",
    "ready: ",
    "depends_on: [",
    "timeout: ",
    "services:\n",
    "steps:\n  - ",
    "tcp: ",
    "exit",
    "x",
];

/// The number of cases: `SUMMONER_FUZZ_CASES`, else `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    ["SUMMONER_FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone)]
enum Edit {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        fragment: usize,
    },
    DuplicateLine {
        line: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    /// The mistakes people make in YAML, line by line.
    Indent {
        line: usize,
        by: usize,
    },
    Dedent {
        line: usize,
        by: usize,
    },
    TabIndent {
        line: usize,
    },
    DeleteFirst {
        line: usize,
        which: char,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Edit::Insert { at, fragment }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (any::<usize>(), 1..6usize).prop_map(|(line, by)| Edit::Indent { line, by }),
        (any::<usize>(), 1..6usize).prop_map(|(line, by)| Edit::Dedent { line, by }),
        any::<usize>().prop_map(|line| Edit::TabIndent { line }),
        (
            any::<usize>(),
            prop::sample::select(vec![':', '}', ']', '"', '\'', '-', '|'])
        )
            .prop_map(|(line, which)| Edit::DeleteFirst { line, which }),
    ]
}

/// Applies `change` to line `line` (modulo the number of lines) of `text`.
fn edit_line(text: &str, line: usize, change: impl FnOnce(&str) -> String) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let line = line % lines.len();
    lines[line] = change(&lines[line]);
    lines.join("\n")
}

/// The nearest char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edit: &Edit) -> String {
    match *edit {
        Edit::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            format!("{}{}", &text[..start], &text[end..])
        }
        Edit::Insert { at, fragment } => {
            let at = boundary(text, at);
            format!("{}{}{}", &text[..at], FRAGMENTS[fragment], &text[at..])
        }
        Edit::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let line = line % lines.len();
            lines.insert(line, lines[line]);
            lines.join("\n")
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let (a, b) = (a % lines.len(), b % lines.len());
            lines.swap(a, b);
            lines.join("\n")
        }
        Edit::Indent { line, by } => edit_line(text, line, |l| format!("{}{l}", " ".repeat(by))),
        Edit::Dedent { line, by } => edit_line(text, line, |l| {
            let spaces = l.len() - l.trim_start_matches(' ').len();
            l[spaces.min(by)..].to_owned()
        }),
        Edit::TabIndent { line } => edit_line(text, line, |l| match l.strip_prefix(' ') {
            Some(rest) => format!("\t{rest}"),
            None => format!("\t{l}"),
        }),
        Edit::DeleteFirst { line, which } => edit_line(text, line, |l| l.replacen(which, "", 1)),
    }
}

/// Parses `text` and checks the outcome: a spec, or errors that all point inside the text.
fn check(text: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = Spec::parse(".summoner.yml", text) {
        prop_assert!(!errors.is_empty());
        let lines: Vec<&str> = text.split('\n').collect();
        for error in &errors {
            prop_assert!(error.line >= 1 && error.column >= 1, "{}", error);
            prop_assert!(error.line <= lines.len(), "{}", error);
            let width = lines[error.line - 1].chars().count();
            prop_assert!(error.column <= width + 1, "{}", error);
            prop_assert!(!error.message.contains('\n'), "{:?}", error.message);
        }
    }
    Ok(())
}

proptest! {
    // Mutations of real files reach the validator's corners; they get more cases.
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn mutated_good_files_never_panic(
        file in 0..GOOD.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text = GOOD[file].to_owned();
        for edit in &edits {
            text = apply(&text, edit);
        }
        check(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // `Spec::load` refuses invalid UTF-8 with a position; what it would pass on to the
        // parser is text, so the valid part of any byte string is what matters here.
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[a-z_:{}\\[\\],\"' \n\t#&*!|>$~0-9.-]{0,300}") {
        check(&text)?;
    }

    #[test]
    fn templates_without_references_render_their_escapes(
        text in "[a-z ${}:\\-é]{0,40}".prop_filter("no ${", |s| !s.contains("${"))
    ) {
        let template = Template::parse(&text).unwrap();
        prop_assert!(template.is_literal());
        prop_assert_eq!(template.render(|_| None).unwrap(), text.replace("$$", "$"));
        prop_assert_eq!(template.raw(), text.as_str());
    }

    #[test]
    fn escaped_text_renders_back_to_itself(text in any::<String>()) {
        let escaped = text.replace('$', "$$");
        let template = Template::parse(&escaped).unwrap();
        prop_assert_eq!(template.render(|_| None).unwrap(), text);
    }
}

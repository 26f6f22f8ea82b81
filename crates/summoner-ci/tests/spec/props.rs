//! Property tests: the parser never panics and always points inside the file; templates
//! round-trip their escapes.

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

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, fragment: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Edit::Insert { at, fragment }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
    ]
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
    #![proptest_config(ProptestConfig::with_cases(512))]

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
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
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

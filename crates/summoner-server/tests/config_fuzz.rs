//! Fuzzing `ServerConfig::parse` with proptest: whatever the config file holds, the server
//! refuses it with a message, never a panic, and a syntax error points inside the file.
//!
//! The inputs are arbitrary bytes, arbitrary text, TOML-like text, and the example config
//! (`examples/summoner.toml`) and small valid configs mutated character by character and
//! line by line. The number of cases comes from `SUMMONER_FUZZ_CASES` (or proptest's
//! `PROPTEST_CASES`); see docs/fuzzing.md for a long run.

use std::path::Path;

use proptest::prelude::*;
use summoner_server::{ConfigError, ServerConfig};

/// The number of cases: `SUMMONER_FUZZ_CASES`, else `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    ["SUMMONER_FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(default)
}

const CONFIGS: &[&str] = &[
    include_str!("../../../examples/summoner.toml"),
    "listen = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"ports\"\nrange = { from = 20000, to = 20009, prop = \"port\" }\n",
    "[[token]]\nname = \"ci\"\nsecret = \"s3cret\"\nrole = \"client\"\n\n[[pool]]\nname = \"boards\"\nmax_hold = \"2h\"\n\n[[pool.resource]]\nname = \"rpi-1\"\nlabels = { arch = \"arm64\" }\nprops = { serial = \"/dev/ttyUSB0\", n = 1 }\ncapacity = 2\n",
];

/// Fragments that matter to TOML or to the config, for mutations to splice in.
const FRAGMENTS: &[&str] = &[
    "=",
    " = ",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\n",
    "\t",
    "\\",
    "\\u",
    "\\U0010ffff",
    "\\ud800",
    "0",
    "-1",
    "1e999",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
    "\"0s\"",
    "\"5x\"",
    "pool",
    "token",
    "resource",
    "range",
    "é",
    "\u{0}",
    "\u{feff}",
    "\r",
    "\r\n",
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
        (any::<usize>(), 1..12usize).prop_map(|(at, len)| Edit::Delete { at, len }),
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

/// Parses `text` and checks the outcome: a config, or an error with a message; a syntax
/// error's line and column lie inside the text.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(err) = ServerConfig::parse(text, Path::new("summoner.toml")) else {
        return Ok(());
    };
    let shown = err.to_string();
    prop_assert!(!shown.is_empty());
    if let ConfigError::Parse { line, column, .. } = err {
        prop_assert!(
            shown.starts_with(&format!("summoner.toml:{line}:{column}: ")),
            "{}",
            shown
        );
        // Lines as toml counts them: `\n` ends a line, and a `\r` before it is part of the
        // line ending, not a column.
        let lines: Vec<&str> = text.split('\n').collect();
        prop_assert!(line >= 1 && line <= lines.len(), "{}", shown);
        let width = lines[line - 1].chars().count();
        prop_assert!(column >= 1 && column <= width + 1, "{}", shown);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // `ServerConfig::load` refuses a file that is not UTF-8 before parsing it.
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn toml_like_text_never_panics(text in r#"[a-z_=\[\]{}"'.,#0-9 \n\t:-]{0,300}"#) {
        check(&text)?;
    }

    #[test]
    fn mutated_configs_never_panic(
        config in 0..CONFIGS.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text = CONFIGS[config].to_owned();
        for edit in &edits {
            text = apply(&text, edit);
        }
        check(&text)?;
    }
}

#[test]
fn the_configs_to_mutate_are_valid() {
    // The example names a secret_env; the fuzzer only needs it parsed, not checked.
    for text in CONFIGS {
        let parsed: Result<ServerConfig, _> = ServerConfig::parse(text, Path::new("summoner.toml"));
        match parsed {
            Ok(_) | Err(ConfigError::MissingSecretEnv { .. }) => {}
            Err(err) => panic!("{err}"),
        }
    }
}

//! The sample files under `tests/specs`.

use std::fs;
use std::path::{Path, PathBuf};

use summoner_ci::spec::{Spec, SpecErrors};

fn specs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/specs")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yml files in {}", dir.display());
    files
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every error position lies inside the text: a line that exists, a column at most one
/// past that line's end.
pub fn assert_positions_inside(text: &str, errors: &SpecErrors) {
    let lines: Vec<&str> = text.split('\n').collect();
    for error in errors {
        assert!(error.line >= 1 && error.column >= 1, "{error}");
        assert!(error.line <= lines.len(), "line past the end: {error}");
        let width = lines[error.line - 1].chars().count();
        assert!(
            error.column <= width + 1,
            "column past the end of the line: {error}"
        );
    }
}

#[test]
fn good_specs_parse() {
    for path in specs("good") {
        let text = fs::read_to_string(&path).unwrap();
        if let Err(errors) = Spec::parse(&name_of(&path), &text) {
            panic!("{} should parse, but:\n{errors}", path.display());
        }
        // `load` reads the same file to the same result.
        assert_eq!(
            Spec::load(&path),
            Spec::parse(&path.display().to_string(), &text)
        );
    }
}

#[test]
fn bad_specs_fail_with_the_recorded_messages() {
    for path in specs("bad") {
        let text = fs::read_to_string(&path).unwrap();
        let name = name_of(&path);
        let errors = match Spec::parse(&name, &text) {
            Ok(spec) => panic!("{} should fail, but parsed to {spec:#?}", path.display()),
            Err(errors) => errors,
        };
        assert!(!errors.is_empty());
        assert_positions_inside(&text, &errors);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({
            snapshot_path => "../specs/snapshots",
            prepend_module_to_snapshot => false,
            input_file => &path,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(stem, errors.to_string());
        });
    }
}

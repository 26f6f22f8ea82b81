//! The Python interpreter for the tests that drive the broker from Python's `websockets`
//! client, found in one place for every test crate that needs it (`summoner-server`'s tests
//! and the CLI's, which include this file by path).
//!
//! Debian's system Python refuses `pip install` (PEP 668) and ships a `websockets` too old for
//! `websockets.asyncio.client` (10.4; the scripts need 13 or newer), so `.ci/run` installs the
//! package into a virtual environment under `target/` rather than into whatever `python3` is
//! first on PATH. A missing package must fail a test at once with the install hint, not later
//! as a client that never printed its first line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What to do when the interpreter lacks the package.
pub const WEBSOCKETS_HINT: &str =
    "install the python websockets package (>= 13): see README, Prerequisites";

/// The environment variable that names the interpreter, when set.
pub const PYTHON_VAR: &str = "SUMMONER_TEST_PYTHON";

/// The interpreter the tests use: `$SUMMONER_TEST_PYTHON` if set, else the virtual
/// environment `.ci/run` makes (`<workspace>/target/pyenv/bin/python3`) if it exists, else
/// `python3` from PATH.
pub fn interpreter() -> PathBuf {
    if let Some(path) = std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    // Both crates that include this file live at `crates/NAME`.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python3");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// The interpreter, checked once per test binary to import `websockets.asyncio.client`.
/// Panics with a one-line install hint when it cannot.
pub fn with_websockets() -> &'static Path {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let python = interpreter();
        let from = if std::env::var_os(PYTHON_VAR).is_some_and(|p| !p.is_empty()) {
            format!(" (from {PYTHON_VAR})")
        } else {
            String::new()
        };
        let status = Command::new(&python)
            .args(["-c", "import websockets.asyncio.client"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Ok(python),
            Ok(_) => Err(format!(
                "{}{from} cannot import websockets.asyncio.client: {WEBSOCKETS_HINT}",
                python.display()
            )),
            Err(err) => Err(format!(
                "{}{from} does not run ({err}): {WEBSOCKETS_HINT}",
                python.display()
            )),
        }
    });
    match checked {
        Ok(python) => python,
        Err(hint) => panic!("{hint}"),
    }
}

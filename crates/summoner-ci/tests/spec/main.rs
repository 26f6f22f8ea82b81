//! Tests of the `.summoner.yml` parser through its public API.
//!
//! - `rules`: one test per validation rule and per accepted form.
//! - `files`: every file in `tests/specs/good` parses; every file in `tests/specs/bad`
//!   fails with the messages recorded in its insta snapshot.
//! - `props`: property tests (no panics, positions inside the file, template escapes).

mod files;
mod props;
mod rules;

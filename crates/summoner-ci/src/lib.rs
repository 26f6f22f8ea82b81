//! summoner's CI engine.
//!
//! For now this crate holds the [`spec`] module, the parser and validator of the
//! `.summoner.yml` build spec shared by `summoner up`, `summoner run` and the CI server, and
//! [`launch`], which turns a spec's services into `summoner-proc` executors.
//! Webhook verification, JUnit parsing, the pipeline runner and the status reporter
//! will join it.

pub mod launch;
pub mod spec;

//! summoner's CI engine.
//!
//! - [`spec`]: the parser and validator of the `.summoner.yml` build spec shared by
//!   `summoner up`, `summoner run` and the CI server;
//! - [`launch`]: turning a spec's services into `summoner-proc` executors;
//! - [`job`]: the job runner: lease the resources, start the services, run a command or the
//!   steps, stop and release, reporting typed events. Every front end runs jobs through it.
//!
//! Webhook verification, JUnit parsing and the status reporter will join them.

pub mod job;
pub mod launch;
pub mod spec;

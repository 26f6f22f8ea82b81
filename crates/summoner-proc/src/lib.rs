//! Start the processes a test needs, return when each is ready, stop them cleanly, leave
//! nothing running.
//!
//! The heir of Python's `summon_process` and `mirakuru`. An [`Executor`] owns one process:
//! built with its arguments, [`start`](Executor::start) returns only once the process is
//! [ready](Ready), [`stop`](Executor::stop) ends it and everything it forked. An
//! [`Orchestrator`] does the same for many, starting each as soon as its dependencies are
//! ready, and returns a [`Running`] guard that stops them all when dropped, also during a panic.
//!
//! ```
//! use std::time::Duration;
//! use summoner_proc::{Executor, Ready};
//!
//! let mut service = Executor::shell("echo booting; echo ready; exec sleep 100")
//!     .name("sleeper")
//!     .ready(Ready::output("^ready$")?)
//!     .timeout(Duration::from_secs(10));
//! service.start()?; // returns the moment "ready" is printed
//! assert!(service.pid().is_some());
//! assert_eq!(service.tail(), ["booting", "ready"]);
//!
//! let stopped = service.stop()?; // SIGTERM to the process group, reaped
//! assert!(stopped.success);
//! assert_eq!(stopped.status.to_string(), "killed by SIGTERM");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Several services, the web server started once the cache answers:
//!
//! ```no_run
//! use summoner_proc::{Executor, Orchestrator, Ready};
//!
//! let cache = Executor::new(["redis-server", "--port", "6390", "--save", ""])
//!     .ready(Ready::tcp("127.0.0.1:6390"));
//! let web = Executor::new(["python3", "-m", "http.server", "8099", "--bind", "127.0.0.1"])
//!     .ready(Ready::http("http://127.0.0.1:8099/").status("200"));
//! let up = Orchestrator::new()
//!     .add("cache", cache)
//!     .add_after("web", web, ["cache"])
//!     .start()?;
//! // … the tests …
//! for (name, stopped) in up.stop()? {
//!     println!("{name}: {}", stopped.status);
//! }
//! # Ok::<(), summoner_proc::Error>(())
//! ```
//!
//! # Nothing outlives the supervisor
//!
//! Every service runs in its own process group behind a tiny *shim* process that watches a
//! pipe from the supervisor: whether the supervisor calls `stop()`, drops the executor,
//! panics, or is killed with SIGKILL, everything the service started is stopped and reaped.
//! That includes daemons that double-fork and call `setsid()` to leave the group: the shim is
//! their subreaper, finds them among its descendants, and sends them the stop signal too. A
//! service whose main process exits with an accepted code while such processes live on has
//! daemonized: it is ready when its check passes, as usual. See `docs/proc.md` for the
//! design.
//!
//! # Platform
//!
//! Linux. The crate uses Linux-specific calls (`pidfd_open`, `close_range`, `signalfd`, child
//! subreapers) with fallbacks; other Unixes may build with the fallbacks but are untested.
//! Windows is not supported.
//!
//! # Features
//!
//! * `tokio`: `start_async`/`stop_async` on [`Executor`], [`Orchestrator`] and [`Running`],
//!   running the blocking calls on tokio's blocking pool.
//!
//! The engine itself is blocking (std threads, no async runtime), so it works from plain
//! `#[test]` functions.

mod error;
mod executor;
pub mod graph;
mod orchestrator;
mod output;
mod ready;
mod shim;
mod signal;
mod text;

pub use error::{DependencyProblem, Error};
pub use executor::{Executor, Service, Stopped};
pub use orchestrator::{Orchestrator, Running};
pub use output::{Observer, Stream};
pub use ready::{CmdCheck, HttpCheck, Ready, StatusPattern};
pub use signal::{ExitStatus, ParseSignalError, Signal};

/// The regular-expression crate used by [`Ready::output_regex`], re-exported so that callers
/// need not depend on the same version themselves.
pub use regex;

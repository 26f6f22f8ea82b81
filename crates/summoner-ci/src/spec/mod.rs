//! The `.summoner.yml` build spec: parsing, validation and the types the engines consume.
//!
//! One file at a repository's root drives `summoner up` (its services), `summoner run` and
//! the CI server (the whole job). [`Spec::parse`] reads it and checks everything that can
//! be checked before the job runs, reporting every problem at once, each with the file
//! name, line and column and what was expected:
//!
//! ```text
//! .summoner.yml:7:5: unknown key "depend_on" in service "web"; did you mean "depends_on"?
//! .summoner.yml:3:14: expected a duration like "30s" or "500ms", found "30 seconds"
//! ```
//!
//! Values that mention `${VAR}` are kept as [`Template`]s and rendered when the job runs,
//! because resource variables such as `SUMMONER_PORTS_0_PORT` only exist once the broker
//! has granted the lease. `$$` is a literal `$`, and a `$` not followed by `{` is left
//! alone so that shell code in `run:` (`$HOME`, `$1`) keeps working.
//!
//! The file format is described in full in `docs/spec.md`.
//!
//! ```
//! use summoner_ci::spec::{ReadySpec, Spec};
//!
//! let spec = Spec::parse(".summoner.yml", "
//! services:
//!   db:
//!     run: redis-server --port ${PORT:-6390}
//!     ready: { tcp: \"127.0.0.1:${PORT:-6390}\" }
//!   web:
//!     run: [python3, -m, http.server]
//!     depends_on: [db]
//! ").unwrap();
//! let order = spec.closure(&["web".to_owned()]).unwrap();
//! assert_eq!(order.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["db", "web"]);
//! let ReadySpec::Tcp(addr) = &spec.services[0].ready else { unreachable!() };
//! assert_eq!(addr.render(|_| None).unwrap(), "127.0.0.1:6390");
//!
//! let err = Spec::parse(".summoner.yml", "services:\n  web:\n    run: x\n    depend_on: [db]\n")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     ".summoner.yml:4:5: unknown key \"depend_on\" in service \"web\"; did you mean \"depends_on\"?"
//! );
//! ```
//!
//! How it works: serde-saphyr deserializes the YAML into a loosely typed tree whose nodes
//! carry their positions (`raw`), duplicate keys included; `validate` walks that tree
//! into the public types while collecting errors. Files are named by noun: `template`
//! (interpolation), `signal` (which signals may stop a service), `ready` (readiness),
//! `graph` (dependencies), `when` (build conditions), `error`. Durations are read with
//! `summoner_protocol::duration`, the grammar of every summoner file and flag; signals,
//! regexes and dependency cycles with `summoner_proc`'s own types and finder, so the spec
//! hands the engine values it has already checked.

mod error;
mod graph;
mod layout;
mod model;
mod raw;
mod ready;
mod signal;
mod suggest;
mod template;
mod validate;
mod when;

pub use error::{ClosureError, SpecError, SpecErrors};
pub use model::{Command, ReadySpec, ResourceReq, ServiceSpec, Spec, Step};
pub use template::{RenderError, Segment, Template, TemplateError, TemplateErrorKind};
pub use when::When;

//! How the command line reaches a summoner server: `--server`, `--token`, their environment
//! variables, and what to say when the server cannot be reached.

use summoner_ci::job::{Broker, JobError};
use summoner_client::DEFAULT_SERVER;

use crate::cli::ServerArgs;

/// What to try when the server cannot be reached.
const CONNECT_HINT: &str =
    "is `summoner serve` running there? Set --server or SUMMONER_SERVER to point elsewhere";

/// The server URL: the flag, then `$SUMMONER_SERVER`, then the default.
pub fn server_url(args: &ServerArgs) -> String {
    args.server
        .clone()
        .or_else(|| non_empty_var("SUMMONER_SERVER"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// The token: the flag, then `$SUMMONER_TOKEN`.
pub fn token(args: &ServerArgs) -> Option<String> {
    args.token
        .clone()
        .or_else(|| non_empty_var("SUMMONER_TOKEN"))
}

/// The broker settings for a job.
pub fn broker(args: &ServerArgs, resumable: bool) -> Broker {
    Broker {
        server: server_url(args),
        token: token(args),
        resumable,
    }
}

/// A hint to print after an error, when the error is one the user can fix by pointing
/// summoner at the right server.
pub fn hint(err: &JobError) -> Option<&'static str> {
    matches!(err, JobError::Connect { .. }).then_some(CONNECT_HINT)
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

//! The server's config file, `summoner.toml`.
//!
//! Every field has a default, so an empty file (or no file at all) gives a server that a new
//! user can try at once: `127.0.0.1:7878`, data in `.summoner/`, and a pool `ports` of 100
//! ports. Unknown keys are refused with their line and column, because a misspelt key that is
//! silently ignored (`resume_grase = "5m"`) is a setting the user believes in and does not
//! have. `docs/config.md` documents every field; `examples/summoner.toml` shows them all.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use summoner_broker::{BrokerConfig, PoolConfig, RangeConfig};
use summoner_protocol::duration::serde_duration;
use summoner_protocol::{BadLimit, LimitExceeded, Limits};

/// The listen address when none is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// The data directory when none is configured, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".summoner";

/// Everything `summoner serve` reads from `summoner.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on for HTTP and WebSocket, e.g. `127.0.0.1:7878` or
    /// `0.0.0.0:7878`. A non-loopback address needs at least one `[[token]]`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the journal (`summoner.db`) lives; created if missing. A relative path is taken
    /// from the working directory of `summoner serve`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How often the server pings every WebSocket. A peer that sends nothing at all (not even
    /// the pong) for two intervals is considered dead and its connection dropped.
    #[serde(default = "default_ping_interval", with = "serde_duration")]
    pub ping_interval: Duration,
    /// How long a session whose connection dropped without a clean close keeps its leases,
    /// waiting for the client to reconnect and `resume`. After a restart, restored leases wait
    /// this long for their holders.
    #[serde(default = "default_resume_grace", with = "serde_duration")]
    pub resume_grace: Duration,
    /// What a *resumable* session's leases do when its connection ends without a WebSocket
    /// close frame, by a TCP FIN or reset from the client's side: what the kernel does when
    /// the client's process dies. `release` (the default) frees them at once, as a clean
    /// close does; `keep` keeps them for `resume_grace`, for set-ups where something between
    /// the clients and the server (a proxy, a load balancer) closes connections on its own.
    /// A peer that falls silent keeps its leases for the grace either way.
    #[serde(default)]
    pub dropped_connection: DroppedConnection,
    /// The shortest time between two `queued` position updates to one waiting client.
    #[serde(default = "default_position_interval", with = "serde_duration")]
    pub position_interval: Duration,
    /// How hard SQLite makes each journal commit durable.
    #[serde(default)]
    pub sync: SyncMode,
    /// How many events between two checkpoints of the held leases. A restart reads the newest
    /// checkpoint and only the events after it, so this bounds the work of a restart.
    #[serde(default = "default_checkpoint_events")]
    pub checkpoint_events: u64,
    /// How long the audit history (`/v1/events`) keeps an event. Older events are deleted
    /// at the checkpoints, except the run-time inventory changes, which a restart replays.
    #[serde(default = "default_history_retention", with = "serde_duration")]
    pub history_retention: Duration,
    /// Who may connect. None: anyone who can reach the address (allowed only on loopback).
    #[serde(default, rename = "token", skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenConfig>,
    /// The pools of resources. Absent: one pool `ports` of the ports 20000 to 20099. An empty
    /// list (`pool = []`): no pools until some are added through the API.
    #[serde(default = "default_pools", rename = "pool")]
    pub pools: Vec<PoolConfig>,

    /// The HTTP edge: connection bounds and deadlines, and which `Host` and `Origin` headers
    /// are accepted (`[http]`).
    #[serde(default)]
    pub http: HttpConfig,

    // Bounds on input (the `[limits]` table).
    /// The bounds on what clients and admins may send: frame size, lengths of ids, notes,
    /// names, labels and props, items per request, and how many requests may wait per
    /// session and in all. Each field has a default (see `docs/config.md`); the pools of
    /// this file are held to them too.
    #[serde(default)]
    pub limits: Limits,

    // Journal damage (see `mark.rs`).
    /// Start even if the journal was found damaged or gone back in time (a missing, emptied,
    /// rolled-back or foreign `summoner.db`, see `docs/server.md`), keeping what is left and
    /// continuing every sequence number and lease id above those issued before. Set only by
    /// `summoner serve --accept-journal-loss`, for one start: never read from the file, where
    /// it would silence every later loss too.
    #[serde(skip)]
    pub accept_journal_loss: bool,
}

/// `[http]`: what the server accepts at its door, before any handler runs.
///
/// A loopback server is still reachable from every browser on the machine, and any socket
/// costs a file handle whether or not it ever sends a request: these settings bound both.
/// `docs/server.md` ("The HTTP edge") says what each protects against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The most connections open at once, WebSockets included. At the limit, a new connection
    /// closes the connection that has waited longest for a request (never a WebSocket, never
    /// one whose request is being handled); with none to close it is refused. Lowered at
    /// start to what the open-files limit allows.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client may take to send a request's head (the WebSocket handshake
    /// included), counted from the connection's start or the previous response, and then
    /// again to send its body. A connection that takes longer is closed.
    #[serde(default = "default_request_read_timeout", with = "serde_duration")]
    pub request_read_timeout: Duration,
    /// Host names accepted in `Host` besides IP addresses and `localhost` (which are always
    /// accepted, at any port): a name (`summoner.lab.example`, any port) or a name and port
    /// (`summoner.lab.example:8080`). Other names are refused, which stops DNS rebinding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://dashboard.lab.example`) whose pages may change things and open
    /// WebSockets, besides the server's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

/// What a resumable session's leases do when its client's end of the connection closes
/// without a close frame (`dropped_connection`).
///
/// A client process that dies has its socket closed by the kernel, with a FIN or a reset,
/// which reaches the server at once; a network partition or a stopped process is silence,
/// found by the pings. The two can be told apart, so by default only silence (and a server
/// restart) keeps leases for the resume grace. Behind a proxy, though, the server sees the
/// proxy's socket, not the client's: a proxy that drops an idle connection or restarts
/// closes it with a FIN while the client is alive and about to resume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DroppedConnection {
    /// The client is gone: release its leases at once.
    #[default]
    Release,
    /// The client may come back: keep its leases for the resume grace, as after silence.
    Keep,
}

/// SQLite's `synchronous` mode for the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every commit (one per batch of inputs) is fsynced before any client hears of it: a
    /// grant survives a power cut.
    #[default]
    Full,
    /// Commits reach the operating system before clients hear of them, and are fsynced at WAL
    /// checkpoints: a grant survives a crash of the server, but not necessarily a power cut.
    Normal,
}

/// Who may use the server, and for what.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and the audit history (never the secret itself).
    pub name: String,
    /// The secret, written in the file. Fine for local use; prefer `secret_env` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The name of an environment variable that holds the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// What the token may do.
    #[serde(default)]
    pub role: Role,
}

/// Secrets stay out of `{:?}` output, and so out of logs and panic messages.
impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("secret_env", &self.secret_env)
            .field("role", &self.role)
            .finish()
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Lease resources over the WebSocket and read the HTTP API.
    #[default]
    Client,
    /// Everything a client may do, plus the admin endpoints (revoke, add, change, remove).
    Admin,
}

/// A token with its secret resolved.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub name: String,
    pub secret: String,
    pub role: Role,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not have the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong, with the offending line quoted.
        message: String,
    },
    /// A listen address other than loopback without any token.
    #[error(
        "refusing to listen on {0} without a [[token]]: anyone who can reach it could take and \
         revoke resources; add a token or listen on 127.0.0.1"
    )]
    OpenNonLoopback(SocketAddr),
    /// A token's `secret_env` names a variable that is not set.
    #[error("token `{name}`: environment variable `{var}` (its secret_env) is not set")]
    MissingSecretEnv {
        /// The token.
        name: String,
        /// The variable.
        var: String,
    },
    /// A token has both `secret` and `secret_env`, or neither.
    #[error("token `{0}` must have exactly one of `secret` and `secret_env`")]
    SecretSource(String),
    /// A token's secret is empty.
    #[error("token `{0}` has an empty secret")]
    EmptySecret(String),
    /// Two tokens share a name or a secret.
    #[error("token `{0}` is defined twice (by name or by secret)")]
    DuplicateToken(String),
    /// A duration that makes no sense.
    #[error("`{field}` must be more than 0s")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// A count that makes no sense.
    #[error("`{field}` must be at least 1")]
    ZeroCount {
        /// The field.
        field: &'static str,
    },
    /// The pools are invalid.
    #[error(transparent)]
    Pools(#[from] summoner_broker::ConfigError),

    /// An `[http]` `allowed_hosts` entry that is not a host name or address, with an optional
    /// port.
    #[error(
        "`http.allowed_hosts`: `{0}` is not a host name with an optional port, like `summoner.lab.example` or `summoner.lab.example:8080`"
    )]
    AllowedHost(String),
    /// An `[http]` `allowed_origins` entry that is not an origin.
    #[error(
        "`http.allowed_origins`: `{0}` is not an origin, like `https://dashboard.lab.example` (a scheme, a host and an optional port, no path)"
    )]
    AllowedOrigin(String),

    // The `[limits]` table.
    /// A limit that cannot be used (0, or more items than the engine supports).
    #[error(transparent)]
    BadLimit(#[from] BadLimit),
    /// A pool of the config exceeds one of the limits.
    #[error("pool `{pool}`: {exceeded}")]
    PoolOverLimit {
        /// The pool (its name shortened if that is what is too long).
        pool: String,
        /// Which limit, and by how much.
        exceeded: LimitExceeded,
    },
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("a valid default address")
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

fn default_ping_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_resume_grace() -> Duration {
    Duration::from_secs(30)
}

fn default_checkpoint_events() -> u64 {
    100_000
}

fn default_history_retention() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

fn default_position_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_pools() -> Vec<PoolConfig> {
    let mut ports = PoolConfig::new("ports");
    ports.range = Some(RangeConfig {
        from: 20000,
        to: 20099,
        prop: "port".into(),
        labels: Default::default(),
        capacity: 1,
    });
    vec![ports]
}

/// Twice the 10,000 idle sessions the benchmarks hold (about 10 KiB each), so that a busy
/// lab never meets it while a flood of sockets still cannot take every file handle.
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

/// `http.max_connections` when the file leaves it out: as many as the open-files limit
/// allows, up to this.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

fn default_request_read_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            request_read_timeout: default_request_read_timeout(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            ping_interval: default_ping_interval(),
            resume_grace: default_resume_grace(),
            dropped_connection: DroppedConnection::default(),
            position_interval: default_position_interval(),
            sync: SyncMode::default(),
            checkpoint_events: default_checkpoint_events(),
            history_retention: default_history_retention(),
            tokens: Vec::new(),
            pools: default_pools(),
            http: HttpConfig::default(),
            limits: Limits::default(),
            accept_journal_loss: false,
        }
    }
}

impl ServerConfig {
    /// Reads and checks `path`. Environment variables named by `secret_env` must be set.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot: the pools, the token rules, and that the secrets named by
    /// `secret_env` are set. [`crate::serve`] calls it again, so a config built in code is
    /// held to the same rules as one read from a file.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.check_for(self.listen)
    }

    /// Like [`ServerConfig::check`], for a server that listens on `addr` (which [`crate::serve`]
    /// takes from its listener, whatever `listen` says).
    pub fn check_for(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        self.broker_config().validate()?;
        self.limits.check()?;
        for pool in &self.pools {
            pool.check_limits(&self.limits)
                .map_err(|exceeded| ConfigError::PoolOverLimit {
                    pool: summoner_protocol::shorten(&pool.name).to_owned(),
                    exceeded,
                })?;
        }
        for (field, value) in [
            ("ping_interval", self.ping_interval),
            ("position_interval", self.position_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if self.checkpoint_events == 0 {
            return Err(ConfigError::ZeroCount {
                field: "checkpoint_events",
            });
        }
        let tokens = self.resolve_tokens()?;
        if tokens.is_empty() && !addr.ip().is_loopback() {
            return Err(ConfigError::OpenNonLoopback(addr));
        }
        self.http.check()?;
        Ok(())
    }

    /// The engine's part of the config.
    pub fn broker_config(&self) -> BrokerConfig {
        BrokerConfig {
            pools: self.pools.clone(),
            resume_grace: self.resume_grace,
            position_interval: self.position_interval,
            limits: self.limits,
        }
    }

    /// The tokens with their secrets, read from the environment where asked.
    pub(crate) fn resolve_tokens(&self) -> Result<Vec<Token>, ConfigError> {
        let mut tokens: Vec<Token> = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            let secret = match (&t.secret, &t.secret_env) {
                (Some(secret), None) => secret.clone(),
                (None, Some(var)) => {
                    std::env::var(var).map_err(|_| ConfigError::MissingSecretEnv {
                        name: t.name.clone(),
                        var: var.clone(),
                    })?
                }
                _ => return Err(ConfigError::SecretSource(t.name.clone())),
            };
            if secret.is_empty() {
                return Err(ConfigError::EmptySecret(t.name.clone()));
            }
            if tokens
                .iter()
                .any(|other| other.name == t.name || other.secret == secret)
            {
                return Err(ConfigError::DuplicateToken(t.name.clone()));
            }
            tokens.push(Token {
                name: t.name.clone(),
                secret,
                role: t.role,
            });
        }
        Ok(tokens)
    }
}

impl HttpConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::ZeroCount {
                field: "http.max_connections",
            });
        }
        if self.request_read_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration {
                field: "http.request_read_timeout",
            });
        }
        for host in &self.allowed_hosts {
            if crate::origin::Authority::parse(host).is_none() {
                return Err(ConfigError::AllowedHost(host.clone()));
            }
        }
        for origin in &self.allowed_origins {
            if crate::origin::Origin::parse(origin).is_none() {
                return Err(ConfigError::AllowedOrigin(origin.clone()));
            }
        }
        Ok(())
    }
}

/// Turns toml's error (a byte span and a message) into `file:line:column: message`, with the
/// offending line quoted, the form editors and people both read.
fn parse_error(text: &str, path: &Path, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim_end().to_owned();
    let Some(span) = err.span() else {
        return ConfigError::Parse {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message,
        };
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let quoted = text[line_start..line_end].trim_end_matches('\r');
    let width = text[start..span.end.min(line_end).max(start)]
        .chars()
        .count()
        .max(1);
    let message = format!(
        "{message}\n  {line:>3} | {quoted}\n      | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

//! What the engine starts with: pools of resources and the session timings.
//!
//! These types deserialize with serde and reject unknown keys, so the server's TOML config
//! (`[[pool]]`, `[[pool.resource]]`, `range = {...}`) can embed them as they are.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use summoner_protocol::duration::{serde_duration, serde_opt_duration};
use summoner_protocol::{Labels, LimitExceeded, Limits, PropValue, Props, shorten};

/// The most resources one `range` may expand to. Far more than any lab has ports or boards,
/// and small enough that a typo (`to = 2000000`) cannot eat the server's memory.
pub const MAX_RANGE_LEN: u64 = 1_000_000;

/// Everything the engine needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// The pools, in the order they are listed (TOML: `[[pool]]`).
    #[serde(default, rename = "pool", alias = "pools")]
    pub pools: Vec<PoolConfig>,
    /// How long a session whose connection dropped without a clean close keeps its leases,
    /// waiting for a `resume`. Also how long restored leases wait after a restart.
    #[serde(default = "default_resume_grace", with = "serde_duration")]
    pub resume_grace: Duration,
    /// The shortest time between two `queued` position updates to one waiter.
    #[serde(default = "default_position_interval", with = "serde_duration")]
    pub position_interval: Duration,
    /// The bounds on what clients send: the engine checks each `acquire` against them again,
    /// and refuses a request that would make its session, or the whole queue, wait for more
    /// than `waiting_per_session` or `waiting_total` requests.
    #[serde(default)]
    pub limits: Limits,
}

fn default_resume_grace() -> Duration {
    Duration::from_secs(30)
}

fn default_position_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            pools: Vec::new(),
            resume_grace: default_resume_grace(),
            position_interval: default_position_interval(),
            limits: Limits::default(),
        }
    }
}

/// One pool: resources listed one by one, a numeric range, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The pool's name, as `acquire` items name it.
    pub name: String,
    /// Resources listed one by one (TOML: `[[pool.resource]]`).
    #[serde(
        default,
        rename = "resource",
        alias = "resources",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<ResourceConfig>,
    /// Resources generated from a numeric range, e.g. ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeConfig>,
    /// The longest a lease on this pool may be held before it is revoked; none = for ever.
    #[serde(
        default,
        with = "serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_hold: Option<Duration>,
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Unique within its pool.
    pub name: String,
    /// What selectors match: `{ arch = "arm64", lab = "b2" }`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// What a holder is handed: `{ serial = "/dev/ttyUSB0", port = 20000 }`.
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    pub props: Props,
    /// How many leases may hold it at once; 1 = exclusive.
    #[serde(default = "one")]
    pub capacity: u32,
    /// A disabled resource is not granted until enabled again.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl ResourceConfig {
    /// An enabled, exclusive resource with no labels and no props.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            labels: Labels::new(),
            props: Props::new(),
            capacity: 1,
            enabled: true,
        }
    }
}

/// Resources named `from`..=`to`, each with the prop `prop` set to its number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeConfig {
    /// The first number, inclusive.
    pub from: u64,
    /// The last number, inclusive.
    pub to: u64,
    /// The prop that carries the number; `port` when absent.
    #[serde(default = "port")]
    pub prop: String,
    /// Labels of every resource of the range.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Capacity of every resource of the range.
    #[serde(default = "one")]
    pub capacity: u32,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn port() -> String {
    "port".into()
}

/// Why a config cannot be used. Messages name the pool and the resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two pools share a name.
    #[error("pool `{0}` is defined twice")]
    DuplicatePool(String),
    /// Two resources of a pool share a name (perhaps one listed and one from the range).
    #[error("pool `{pool}` has two resources named `{name}`")]
    DuplicateResource {
        /// The pool.
        pool: String,
        /// The repeated name.
        name: String,
    },
    /// A pool or resource name is empty.
    #[error("{0} has an empty name")]
    EmptyName(String),
    /// A capacity of 0 would make a resource that can never be granted.
    #[error("resource `{name}` of pool `{pool}` has capacity 0; it must be at least 1")]
    ZeroCapacity {
        /// The pool.
        pool: String,
        /// The resource.
        name: String,
    },
    /// A range that is empty or too long.
    #[error("pool `{pool}`: {message}")]
    BadRange {
        /// The pool.
        pool: String,
        /// What is wrong.
        message: String,
    },
}

impl PoolConfig {
    /// A pool with no resources yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            resources: Vec::new(),
            range: None,
            max_hold: None,
        }
    }

    /// The pool's resources: the listed ones, then the range's, checked for duplicates and
    /// zero capacities.
    pub fn expand(&self) -> Result<Vec<ResourceConfig>, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName("a pool".into()));
        }
        let mut out = self.resources.clone();
        if let Some(range) = &self.range {
            if range.from > range.to {
                return Err(ConfigError::BadRange {
                    pool: self.name.clone(),
                    message: format!(
                        "range from {} to {} is empty (`from` must not exceed `to`)",
                        range.from, range.to
                    ),
                });
            }
            if range.to - range.from >= MAX_RANGE_LEN {
                return Err(ConfigError::BadRange {
                    pool: self.name.clone(),
                    message: format!(
                        "range from {} to {} has more than {MAX_RANGE_LEN} resources",
                        range.from, range.to
                    ),
                });
            }
            out.extend((range.from..=range.to).map(|n| ResourceConfig {
                name: n.to_string(),
                labels: range.labels.clone(),
                props: Props::from([(range.prop.clone(), PropValue::from(n))]),
                capacity: range.capacity,
                enabled: true,
            }));
        }
        let mut seen = HashSet::with_capacity(out.len());
        for resource in &out {
            self.check_resource(resource)?;
            if !seen.insert(resource.name.as_str()) {
                return Err(ConfigError::DuplicateResource {
                    pool: self.name.clone(),
                    name: resource.name.clone(),
                });
            }
        }
        Ok(out)
    }

    pub(crate) fn check_resource(&self, resource: &ResourceConfig) -> Result<(), ConfigError> {
        if resource.name.is_empty() {
            return Err(ConfigError::EmptyName(format!(
                "a resource of pool `{}`",
                self.name
            )));
        }
        if resource.capacity == 0 {
            return Err(ConfigError::ZeroCapacity {
                pool: self.name.clone(),
                name: resource.name.clone(),
            });
        }
        Ok(())
    }
}

impl BrokerConfig {
    /// Checks every pool (see [`PoolConfig::expand`]) and that pool names are unique.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for pool in &self.pools {
            pool.expand()?;
            if !seen.insert(pool.name.as_str()) {
                return Err(ConfigError::DuplicatePool(pool.name.clone()));
            }
        }
        Ok(())
    }
}

// The `[limits]` on names, labels and props. They are checked where an inventory comes in
// (the server's config file and the admin API), not when the engine starts, so that a
// journal written under other limits still restores.

impl PoolConfig {
    /// Checks the pool's name, its range's labels and prop, and each listed resource against
    /// `limits`.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), LimitExceeded> {
        limits.check_name(&self.name, || {
            format!("the name of pool `{}…`", shorten(&self.name))
        })?;
        if let Some(range) = &self.range {
            let of = format!("the range of pool `{}`", self.name);
            limits.check_labels(&range.labels, &of)?;
            let props = Props::from([(range.prop.clone(), PropValue::from(range.to))]);
            limits.check_props(&props, &of)?;
        }
        for resource in &self.resources {
            resource.check_limits(&self.name, limits)?;
        }
        Ok(())
    }
}

impl ResourceConfig {
    /// Checks the resource's name, labels and props against `limits`; `pool` is for messages.
    pub fn check_limits(&self, pool: &str, limits: &Limits) -> Result<(), LimitExceeded> {
        limits.check_name(&self.name, || {
            format!(
                "the name of resource `{}…` of pool `{}`",
                shorten(&self.name),
                shorten(pool)
            )
        })?;
        let of = format!("resource `{}` of pool `{}`", self.name, shorten(pool));
        limits.check_labels(&self.labels, &of)?;
        limits.check_props(&self.props, &of)
    }
}

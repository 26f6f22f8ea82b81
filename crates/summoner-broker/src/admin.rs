//! Administrative changes: force release, disable and enable, and changing the inventory
//! while leases are held and requests wait.
//!
//! The rules favour the holder: disabling a resource or lowering its capacity never takes it
//! from anyone (it is just not granted again until there is room). Only an explicit force
//! release, or removing the resource or its pool, revokes a lease. Waiters are re-examined
//! after every change that can help them (an add, an enable, a label change), and a waiter
//! that a change made impossible is answered at once instead of waiting for ever.
//!
//! This file checks an [`AdminOp`] against the inventory and resolves its names into a
//! [`Checked`]; the engine applies the change (`Broker::apply` in `engine.rs`), since that
//! touches leases, waiters and sessions together.

use serde::{Deserialize, Serialize};
use summoner_protocol::LeaseId;

use crate::config::{ConfigError, PoolConfig, ResourceConfig};
use crate::ids::{PoolId, ResId};
use crate::pool::Inventory;

/// An administrative change, as the HTTP API hands it over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminOp {
    /// Force-release a lease; its holder gets `revoked {reason: "released by admin"}`.
    Revoke {
        /// The lease.
        lease: LeaseId,
        /// Added to the reason the holder is told, after "released by admin: ".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Stop granting a resource. Its holders keep it.
    Disable {
        /// The pool.
        pool: String,
        /// The resource.
        resource: String,
    },
    /// Grant a disabled resource again.
    Enable {
        /// The pool.
        pool: String,
        /// The resource.
        resource: String,
    },
    /// Add a resource to a pool.
    AddResource {
        /// The pool.
        pool: String,
        /// The new resource.
        resource: ResourceConfig,
    },
    /// Replace the labels, props, capacity and enabled flag of the resource with this name.
    /// Holders keep their lease (and the props they were given) even if the resource no longer
    /// matches what they asked for, or its capacity is now below the number of holders.
    ChangeResource {
        /// The pool.
        pool: String,
        /// The resource as it should be.
        resource: ResourceConfig,
    },
    /// Remove a resource, revoking its leases first.
    RemoveResource {
        /// The pool.
        pool: String,
        /// The resource.
        resource: String,
    },
    /// Add a pool.
    AddPool {
        /// The pool.
        pool: PoolConfig,
    },
    /// Remove a pool, revoking its leases and refusing its waiters first.
    RemovePool {
        /// The pool.
        pool: String,
    },
}

/// Why an admin change was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No pool by that name.
    #[error("unknown pool `{0}`")]
    UnknownPool(String),
    /// No resource by that name in the pool.
    #[error("pool `{pool}` has no resource `{name}`")]
    UnknownResource {
        /// The pool.
        pool: String,
        /// The name asked for.
        name: String,
    },
    /// No lease by that id.
    #[error("no lease `{0}`")]
    UnknownLease(LeaseId),
    /// A pool by that name exists already.
    #[error("pool `{0}` already exists")]
    PoolExists(String),
    /// A resource by that name exists in the pool already.
    #[error("pool `{pool}` already has a resource `{name}`")]
    ResourceExists {
        /// The pool.
        pool: String,
        /// The name.
        name: String,
    },
    /// The new pool or resource is invalid.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// An [`AdminOp`] that passed its checks, with its names resolved and the texts its holders
/// and waiters will be told. Applying it changes the engine; only adding a pool can still
/// fail, on the pool's own config, and then before anything changed.
#[derive(Debug)]
pub(crate) enum Checked {
    /// Revoke `lease`, telling its holder `reason`.
    Revoke {
        lease: LeaseId,
        reason: String,
    },
    Disable {
        r: ResId,
        pool: String,
        name: String,
    },
    Enable {
        r: ResId,
        pool: String,
        name: String,
    },
    AddResource {
        p: PoolId,
        pool: String,
        resource: ResourceConfig,
    },
    /// Replace resource `r`'s settings; waiters it leaves impossible are told `because`.
    ChangeResource {
        r: ResId,
        pool: String,
        resource: ResourceConfig,
        because: String,
    },
    /// Remove resource `r`, revoking its holders with `reason`; waiters it leaves impossible
    /// are told `because`.
    RemoveResource {
        r: ResId,
        pool: String,
        name: String,
        reason: String,
        because: String,
    },
    AddPool {
        pool: PoolConfig,
    },
    /// Remove pool `p`, revoking its holders with `reason` and refusing its waiters with
    /// `refusal`.
    RemovePool {
        p: PoolId,
        pool: String,
        reason: String,
        refusal: String,
    },
}

impl AdminOp {
    /// Checks the operation against the inventory `inv` and the lease ids `has_lease` knows.
    /// `Err`: it was refused, and nothing may change.
    pub(crate) fn check(
        self,
        inv: &Inventory,
        has_lease: impl Fn(&LeaseId) -> bool,
    ) -> Result<Checked, AdminError> {
        Ok(match self {
            AdminOp::Revoke { lease, reason } => {
                if !has_lease(&lease) {
                    return Err(AdminError::UnknownLease(lease));
                }
                let reason = match reason {
                    Some(r) => format!("released by admin: {r}"),
                    None => "released by admin".into(),
                };
                Checked::Revoke { lease, reason }
            }
            AdminOp::Disable { pool, resource } => Checked::Disable {
                r: resource_id(inv, &pool, &resource)?,
                pool,
                name: resource,
            },
            AdminOp::Enable { pool, resource } => Checked::Enable {
                r: resource_id(inv, &pool, &resource)?,
                pool,
                name: resource,
            },
            AdminOp::AddResource { pool, resource } => {
                let p = pool_id(inv, &pool)?;
                if inv.pool(p).by_name.contains_key(&resource.name) {
                    return Err(AdminError::ResourceExists {
                        pool,
                        name: resource.name,
                    });
                }
                inv.pool_config(p).check_resource(&resource)?;
                Checked::AddResource { p, pool, resource }
            }
            AdminOp::ChangeResource { pool, resource } => {
                let r = resource_id(inv, &pool, &resource.name)?;
                inv.pool_config(inv.res(r).pool).check_resource(&resource)?;
                let because = format!("resource `{}` was changed", resource.name);
                Checked::ChangeResource {
                    r,
                    pool,
                    resource,
                    because,
                }
            }
            AdminOp::RemoveResource { pool, resource } => {
                let r = resource_id(inv, &pool, &resource)?;
                let reason = format!("resource `{resource}` of pool `{pool}` was removed by admin");
                let because = format!("resource `{resource}` was removed");
                Checked::RemoveResource {
                    r,
                    pool,
                    name: resource,
                    reason,
                    because,
                }
            }
            AdminOp::AddPool { pool } => {
                if inv.pool_ids.contains_key(&pool.name) {
                    return Err(AdminError::PoolExists(pool.name));
                }
                Checked::AddPool { pool }
            }
            AdminOp::RemovePool { pool } => {
                let p = pool_id(inv, &pool)?;
                let reason = format!("pool `{pool}` was removed by admin");
                let refusal = format!("pool `{pool}` was removed");
                Checked::RemovePool {
                    p,
                    pool,
                    reason,
                    refusal,
                }
            }
        })
    }
}

fn pool_id(inv: &Inventory, pool: &str) -> Result<PoolId, AdminError> {
    inv.pool_ids
        .get(pool)
        .copied()
        .ok_or_else(|| AdminError::UnknownPool(pool.to_owned()))
}

fn resource_id(inv: &Inventory, pool: &str, name: &str) -> Result<ResId, AdminError> {
    let p = pool_id(inv, pool)?;
    inv.pool(p)
        .by_name
        .get(name)
        .copied()
        .ok_or_else(|| AdminError::UnknownResource {
            pool: pool.to_owned(),
            name: name.to_owned(),
        })
}

//! Administrative changes: force release, disable and enable, and changing the inventory
//! while leases are held and requests wait.
//!
//! The rules favour the holder: disabling a resource or lowering its capacity never takes it
//! from anyone (it is just not granted again until there is room). Only an explicit force
//! release, or removing the resource or its pool, revokes a lease. Waiters are re-examined
//! after every change that can help them (an add, an enable, a label change), and a waiter
//! that a change made impossible is answered at once instead of waiting for ever.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use summoner_protocol::{ErrorCode, LeaseId, ServerMessage};

use crate::config::{ConfigError, PoolConfig, ResourceConfig};
use crate::engine::{Broker, End, Outputs};
use crate::event::{EventKind, RevokeCause};
use crate::pool::{PoolId, ResId};
use crate::queue::{QueueKey, Work};

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

impl Broker {
    pub(crate) fn admin(
        &mut self,
        now: Instant,
        op: AdminOp,
        out: &mut Outputs,
    ) -> Result<(), AdminError> {
        let mut work = Work::new();
        match op {
            AdminOp::Revoke { lease, reason } => {
                if !self.leases.contains_key(&lease) {
                    return Err(AdminError::UnknownLease(lease));
                }
                let reason = match reason {
                    Some(r) => format!("released by admin: {r}"),
                    None => "released by admin".into(),
                };
                self.end_lease(
                    now,
                    &lease,
                    End::Revoked(RevokeCause::Admin, reason),
                    out,
                    &mut work,
                );
            }
            AdminOp::Disable { pool, resource } => {
                let r = self.resource_id(&pool, &resource)?;
                if self.inv.res(r).enabled {
                    self.inv.res_mut(r).enabled = false;
                    self.inv.refresh(r);
                    self.emit(
                        out,
                        EventKind::ResourceDisabled {
                            pool,
                            name: resource,
                        },
                    );
                }
            }
            AdminOp::Enable { pool, resource } => {
                let r = self.resource_id(&pool, &resource)?;
                if !self.inv.res(r).enabled {
                    self.inv.res_mut(r).enabled = true;
                    if self.inv.refresh(r) {
                        work.push((self.inv.res(r).pool, vec![r]));
                    }
                    self.emit(
                        out,
                        EventKind::ResourceEnabled {
                            pool,
                            name: resource,
                        },
                    );
                }
            }
            AdminOp::AddResource { pool, resource } => {
                let p = self.pool_id(&pool)?;
                if self.inv.pool(p).by_name.contains_key(&resource.name) {
                    return Err(AdminError::ResourceExists {
                        pool,
                        name: resource.name,
                    });
                }
                self.inv.pool_config(p).check_resource(&resource)?;
                let r = self.inv.add_resource(p, resource.clone());
                if self.inv.res(r).is_available() {
                    work.push((p, vec![r]));
                }
                self.emit(out, EventKind::ResourceAdded { pool, resource });
            }
            AdminOp::ChangeResource { pool, resource } => {
                let r = self.resource_id(&pool, &resource.name)?;
                let p = self.inv.res(r).pool;
                self.inv.pool_config(p).check_resource(&resource)?;
                let res = self.inv.res_mut(r);
                res.labels = resource.labels.clone();
                res.props = resource.props.clone();
                res.capacity = resource.capacity;
                res.enabled = resource.enabled;
                if self.inv.refresh(r) {
                    work.push((p, vec![r]));
                }
                let name = resource.name.clone();
                self.emit(out, EventKind::ResourceChanged { pool, resource });
                self.refuse_impossible(
                    now,
                    p,
                    &format!("resource `{name}` was changed"),
                    out,
                    &mut work,
                );
            }
            AdminOp::RemoveResource { pool, resource } => {
                let r = self.resource_id(&pool, &resource)?;
                let p = self.inv.res(r).pool;
                let reason = format!("resource `{resource}` of pool `{pool}` was removed by admin");
                for lease in self.leases_on(|res| res == r) {
                    self.end_lease(
                        now,
                        &lease,
                        End::Revoked(RevokeCause::ResourceRemoved, reason.clone()),
                        out,
                        &mut work,
                    );
                }
                self.inv.remove_resource(r);
                self.emit(
                    out,
                    EventKind::ResourceRemoved {
                        pool,
                        name: resource.clone(),
                    },
                );
                self.refuse_impossible(
                    now,
                    p,
                    &format!("resource `{resource}` was removed"),
                    out,
                    &mut work,
                );
            }
            AdminOp::AddPool { pool } => {
                if self.inv.pool_ids.contains_key(&pool.name) {
                    return Err(AdminError::PoolExists(pool.name));
                }
                self.inv.add_pool(&pool)?;
                self.emit(out, EventKind::PoolAdded { pool });
            }
            AdminOp::RemovePool { pool } => {
                let p = self.pool_id(&pool)?;
                let reason = format!("pool `{pool}` was removed by admin");
                let inv = &self.inv;
                for lease in self.leases_on(|res| inv.res(res).pool == p) {
                    self.end_lease(
                        now,
                        &lease,
                        End::Revoked(RevokeCause::PoolRemoved, reason.clone()),
                        out,
                        &mut work,
                    );
                }
                let waiting: Vec<QueueKey> = self.inv.pool(p).queue.iter().copied().collect();
                for key in waiting {
                    self.refuse(
                        now,
                        key,
                        ErrorCode::UnknownPool,
                        format!("pool `{pool}` was removed"),
                        out,
                        &mut work,
                    );
                }
                self.inv.remove_pool(p);
                self.emit(out, EventKind::PoolRemoved { pool });
            }
        }
        self.wake(now, work, out);
        Ok(())
    }

    fn pool_id(&self, pool: &str) -> Result<PoolId, AdminError> {
        self.inv
            .pool_ids
            .get(pool)
            .copied()
            .ok_or_else(|| AdminError::UnknownPool(pool.to_owned()))
    }

    fn resource_id(&self, pool: &str, name: &str) -> Result<ResId, AdminError> {
        let p = self.pool_id(pool)?;
        self.inv
            .pool(p)
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| AdminError::UnknownResource {
                pool: pool.to_owned(),
                name: name.to_owned(),
            })
    }

    /// Leases holding a resource that satisfies `on`, oldest first.
    fn leases_on(&self, on: impl Fn(ResId) -> bool) -> Vec<LeaseId> {
        let mut hit: Vec<(u64, LeaseId)> = self
            .leases
            .values()
            .filter(|l| l.resources.iter().any(|&r| on(r)))
            .map(|l| (l.seq, l.id.clone()))
            .collect();
        hit.sort_unstable();
        hit.into_iter().map(|(_, id)| id).collect()
    }

    /// Answers the waiters of pool `p` that can no longer ever be granted.
    fn refuse_impossible(
        &mut self,
        now: Instant,
        p: PoolId,
        because: &str,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let impossible: Vec<(QueueKey, String)> = self
            .inv
            .pool(p)
            .queue
            .iter()
            .filter_map(|key| {
                self.unsatisfiable(&self.waiters[key])
                    .map(|why| (*key, format!("{why} ({because})")))
            })
            .collect();
        for (key, message) in impossible {
            self.refuse(now, key, ErrorCode::Unsatisfiable, message, out, work);
        }
    }

    fn refuse(
        &mut self,
        now: Instant,
        key: QueueKey,
        code: ErrorCode,
        message: String,
        out: &mut Outputs,
        work: &mut Work,
    ) {
        let w = self.remove_waiter(now, key);
        self.counters.refusals += 1;
        out.messages.push((
            w.session.clone(),
            ServerMessage::error(Some(w.id.clone()), code, message.clone()),
        ));
        self.emit(
            out,
            EventKind::RequestFailed {
                session: w.session.clone(),
                id: w.id.clone(),
                code,
                message,
            },
        );
        self.unblock(&w, work);
    }
}

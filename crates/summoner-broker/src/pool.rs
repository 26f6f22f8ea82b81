//! Pools and their resources: what exists, what is free, and how many leases hold each.
//!
//! Resources live in one table indexed by a small integer ([`ResId`]) so that the hot paths
//! (grant, release) touch integers, not names. Ids are never reused: a removed resource or
//! pool leaves an empty slot, which costs a few bytes per admin removal and rules out a whole
//! class of "stale id points at a new resource" bugs.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use summoner_protocol::{GrantedResource, Labels, Props};

use crate::config::{BrokerConfig, ConfigError, PoolConfig, ResourceConfig};
use crate::event::ResourceRef;
use crate::ids::{PoolId, ResId};

#[derive(Debug)]
pub(crate) struct Resource {
    pub pool: PoolId,
    pub name: String,
    pub labels: Labels,
    pub props: Props,
    pub capacity: u32,
    pub enabled: bool,
    /// How many leases hold it. May exceed `capacity` only after an admin lowered the capacity
    /// of a held resource (holders keep what they have, as with `disable`).
    pub held: u32,
}

impl Resource {
    /// Whether one more lease could take it now.
    pub fn is_available(&self) -> bool {
        self.enabled && self.held < self.capacity
    }

    pub fn granted(&self, pool: &Pool) -> GrantedResource {
        GrantedResource {
            pool: pool.name.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            props: self.props.clone(),
        }
    }

    pub fn config(&self) -> ResourceConfig {
        ResourceConfig {
            name: self.name.clone(),
            labels: self.labels.clone(),
            props: self.props.clone(),
            capacity: self.capacity,
            enabled: self.enabled,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Pool {
    pub name: String,
    pub max_hold: Option<Duration>,
    /// Every resource, in the order they were listed or added.
    pub resources: Vec<ResId>,
    pub by_name: HashMap<String, ResId>,
    /// Resources with a free slot that are enabled, lowest id first, so grants are
    /// deterministic and follow the config order.
    pub available: BTreeSet<ResId>,
}

#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub pools: Vec<Option<Pool>>,
    pub pool_ids: HashMap<String, PoolId>,
    pub resources: Vec<Option<Resource>>,
}

impl Inventory {
    pub fn from_config(config: &BrokerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut inventory = Self::default();
        for pool in &config.pools {
            inventory.add_pool(pool)?;
        }
        Ok(inventory)
    }

    pub fn add_pool(&mut self, config: &PoolConfig) -> Result<PoolId, ConfigError> {
        let resources = config.expand()?;
        if self.pool_ids.contains_key(&config.name) {
            return Err(ConfigError::DuplicatePool(config.name.clone()));
        }
        let id = self.pools.len();
        self.pools.push(Some(Pool {
            name: config.name.clone(),
            max_hold: config.max_hold,
            resources: Vec::with_capacity(resources.len()),
            by_name: HashMap::with_capacity(resources.len()),
            available: BTreeSet::new(),
        }));
        self.pool_ids.insert(config.name.clone(), id);
        for resource in resources {
            self.add_resource(id, resource);
        }
        Ok(id)
    }

    /// Adds a resource whose name the caller checked to be new in the pool.
    pub fn add_resource(&mut self, pool: PoolId, config: ResourceConfig) -> ResId {
        let id = self.resources.len();
        let resource = Resource {
            pool,
            name: config.name,
            labels: config.labels,
            props: config.props,
            capacity: config.capacity,
            enabled: config.enabled,
            held: 0,
        };
        let available = resource.is_available();
        let pool = self.pool_mut(pool);
        pool.resources.push(id);
        pool.by_name.insert(resource.name.clone(), id);
        if available {
            pool.available.insert(id);
        }
        self.resources.push(Some(resource));
        id
    }

    /// Removes a resource that no lease holds any more.
    pub fn remove_resource(&mut self, id: ResId) {
        let resource = self.resources[id].take().expect("removing a live resource");
        debug_assert_eq!(resource.held, 0, "removing a held resource");
        let pool = self.pool_mut(resource.pool);
        pool.resources.retain(|&r| r != id);
        pool.by_name.remove(&resource.name);
        pool.available.remove(&id);
    }

    /// Removes a pool whose resources no lease holds and for which nobody waits.
    pub fn remove_pool(&mut self, id: PoolId) {
        let pool = self.pools[id].take().expect("removing a live pool");
        for r in pool.resources {
            self.resources[r] = None;
        }
        self.pool_ids.remove(&pool.name);
    }

    pub fn pool(&self, id: PoolId) -> &Pool {
        self.pools[id].as_ref().expect("a live pool")
    }

    pub fn pool_mut(&mut self, id: PoolId) -> &mut Pool {
        self.pools[id].as_mut().expect("a live pool")
    }

    pub fn res(&self, id: ResId) -> &Resource {
        self.resources[id].as_ref().expect("a live resource")
    }

    pub fn res_mut(&mut self, id: ResId) -> &mut Resource {
        self.resources[id].as_mut().expect("a live resource")
    }

    pub fn live_pools(&self) -> impl Iterator<Item = (PoolId, &Pool)> {
        self.pools
            .iter()
            .enumerate()
            .filter_map(|(id, p)| p.as_ref().map(|p| (id, p)))
    }

    /// The refusal for a request that names a pool that does not exist.
    pub fn unknown_pool_message(&self, pool: &str) -> String {
        let mut known: Vec<&str> = self.pool_ids.keys().map(String::as_str).collect();
        known.sort_unstable();
        if known.is_empty() {
            format!("unknown pool `{pool}`; there are no pools")
        } else {
            format!("unknown pool `{pool}`; known pools: {}", known.join(", "))
        }
    }

    /// The shortest `max_hold` among `pools` and when it runs out for a lease taken at `now`.
    pub fn shortest_max_hold(
        &self,
        pools: impl IntoIterator<Item = PoolId>,
        now: Instant,
    ) -> Option<(Instant, Duration)> {
        let mut shortest: Option<(Instant, Duration)> = None;
        for p in pools {
            if let Some(d) = self.pool(p).max_hold {
                let at = now + d;
                if shortest.is_none_or(|(m, _)| at < m) {
                    shortest = Some((at, d));
                }
            }
        }
        shortest
    }

    pub fn find(&self, pool: &str, name: &str) -> Option<ResId> {
        let pool = self.pool(*self.pool_ids.get(pool)?);
        pool.by_name.get(name).copied()
    }

    pub fn reference(&self, id: ResId) -> ResourceRef {
        let resource = self.res(id);
        ResourceRef {
            pool: self.pool(resource.pool).name.clone(),
            name: resource.name.clone(),
        }
    }

    /// Re-files a resource in its pool's `available` set after its state changed. Returns
    /// whether it is available now.
    pub fn refresh(&mut self, id: ResId) -> bool {
        let resource = self.res(id);
        let (pool, available) = (resource.pool, resource.is_available());
        let set = &mut self.pool_mut(pool).available;
        if available {
            set.insert(id);
        } else {
            set.remove(&id);
        }
        available
    }

    /// One more lease holds `id`.
    pub fn take(&mut self, id: ResId) {
        let resource = self.res_mut(id);
        debug_assert!(resource.is_available(), "taking an unavailable resource");
        resource.held += 1;
        if !resource.is_available() {
            let pool = resource.pool;
            self.pool_mut(pool).available.remove(&id);
        }
    }

    /// One lease fewer holds `id`. Returns whether it is available now.
    pub fn give_back(&mut self, id: ResId) -> bool {
        let resource = self.res_mut(id);
        resource.held -= 1;
        if resource.is_available() {
            let pool = resource.pool;
            self.pool_mut(pool).available.insert(id);
            true
        } else {
            false
        }
    }

    pub fn pool_config(&self, id: PoolId) -> PoolConfig {
        let pool = self.pool(id);
        PoolConfig {
            name: pool.name.clone(),
            resources: pool
                .resources
                .iter()
                .map(|&r| self.res(r).config())
                .collect(),
            range: None,
            max_hold: pool.max_hold,
        }
    }
}

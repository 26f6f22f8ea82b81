//! The inventory a restarted server starts with: the config's pools, with the run-time
//! changes from the journal replayed on top.
//!
//! The config file is the base, because it is what the operator edits. The admin API's
//! changes (resources added, changed, disabled, removed; pools added or removed) are events in
//! the journal, and replaying them in order after the config makes them survive a restart, as
//! a user who disabled a flaky board expects. A change that no longer applies (its pool was
//! taken out of the config, or the config now defines the resource or pool it added) is
//! skipped with a warning: the config wins where the two disagree about existence, the journal
//! wins about the state of what both know.

use summoner_broker::{Event, EventKind, PoolConfig, ResourceConfig};

/// The pools being rebuilt.
#[derive(Debug, Clone)]
pub(crate) struct Inventory {
    pools: Vec<PoolConfig>,
    /// How many journal changes were applied and skipped, for the start-up log.
    pub applied: usize,
    pub skipped: usize,
}

impl Inventory {
    pub fn new(pools: Vec<PoolConfig>) -> Self {
        Self {
            pools,
            applied: 0,
            skipped: 0,
        }
    }

    /// The pools as they are now.
    pub fn into_pools(self) -> Vec<PoolConfig> {
        self.pools
    }

    /// Applies one journal event; events other than inventory changes are ignored.
    pub fn apply(&mut self, event: &Event) {
        let result = match &event.kind {
            EventKind::ResourceAdded { pool, resource } => self.add(pool, resource),
            EventKind::ResourceChanged { pool, resource } => self
                .resource_mut(pool, &resource.name)
                .map(|r| *r = resource.clone()),
            EventKind::ResourceRemoved { pool, name } => self.remove(pool, name),
            EventKind::ResourceDisabled { pool, name } => {
                self.resource_mut(pool, name).map(|r| r.enabled = false)
            }
            EventKind::ResourceEnabled { pool, name } => {
                self.resource_mut(pool, name).map(|r| r.enabled = true)
            }
            EventKind::PoolAdded { pool } => {
                if self.pools.iter().any(|p| p.name == pool.name) {
                    Err(format!("pool `{}` exists already", pool.name))
                } else {
                    self.pools.push(pool.clone());
                    Ok(())
                }
            }
            EventKind::PoolRemoved { pool } => {
                match self.pools.iter().position(|p| p.name == *pool) {
                    Some(i) => {
                        self.pools.remove(i);
                        Ok(())
                    }
                    None => Err(format!("pool `{pool}` does not exist")),
                }
            }
            _ => return,
        };
        match result {
            Ok(()) => self.applied += 1,
            Err(why) => {
                self.skipped += 1;
                tracing::warn!(seq = event.seq, "journal change not replayed: {why}");
            }
        }
    }

    /// The pool's resources as an explicit list, so a change can address one of them even if
    /// it came from a `range`.
    fn expanded(&mut self, pool: &str) -> Result<&mut PoolConfig, String> {
        let p = self
            .pools
            .iter_mut()
            .find(|p| p.name == pool)
            .ok_or_else(|| format!("pool `{pool}` does not exist"))?;
        if p.range.is_some() {
            p.resources = p.expand().map_err(|e| e.to_string())?;
            p.range = None;
        }
        Ok(p)
    }

    fn resource_mut(&mut self, pool: &str, name: &str) -> Result<&mut ResourceConfig, String> {
        self.expanded(pool)?
            .resources
            .iter_mut()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("pool `{pool}` has no resource `{name}`"))
    }

    fn add(&mut self, pool: &str, resource: &ResourceConfig) -> Result<(), String> {
        let p = self.expanded(pool)?;
        if p.resources.iter().any(|r| r.name == resource.name) {
            return Err(format!(
                "pool `{pool}` already has a resource `{}`",
                resource.name
            ));
        }
        p.resources.push(resource.clone());
        Ok(())
    }

    fn remove(&mut self, pool: &str, name: &str) -> Result<(), String> {
        let p = self.expanded(pool)?;
        let i = p
            .resources
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| format!("pool `{pool}` has no resource `{name}`"))?;
        p.resources.remove(i);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use summoner_broker::RangeConfig;

    use super::*;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event { seq, kind }
    }

    fn ports() -> PoolConfig {
        let mut p = PoolConfig::new("ports");
        p.range = Some(RangeConfig {
            from: 1,
            to: 3,
            prop: "port".into(),
            labels: Default::default(),
            capacity: 1,
        });
        p
    }

    #[test]
    fn replays_changes_on_top_of_the_config() {
        let mut inv = Inventory::new(vec![ports()]);
        inv.apply(&event(
            1,
            EventKind::ResourceDisabled {
                pool: "ports".into(),
                name: "2".into(),
            },
        ));
        inv.apply(&event(
            2,
            EventKind::ResourceAdded {
                pool: "ports".into(),
                resource: ResourceConfig::new("extra"),
            },
        ));
        inv.apply(&event(
            3,
            EventKind::ResourceRemoved {
                pool: "ports".into(),
                name: "1".into(),
            },
        ));
        inv.apply(&event(
            4,
            EventKind::PoolAdded {
                pool: PoolConfig::new("boards"),
            },
        ));
        // Skipped: the pool exists, and the resource is unknown.
        inv.apply(&event(
            5,
            EventKind::PoolAdded {
                pool: PoolConfig::new("boards"),
            },
        ));
        inv.apply(&event(
            6,
            EventKind::ResourceEnabled {
                pool: "ports".into(),
                name: "nope".into(),
            },
        ));
        assert_eq!((inv.applied, inv.skipped), (4, 2));
        let pools = inv.into_pools();
        let names: Vec<(&str, bool)> = pools[0]
            .resources
            .iter()
            .map(|r| (r.name.as_str(), r.enabled))
            .collect();
        assert_eq!(names, [("2", false), ("3", true), ("extra", true)]);
        assert!(pools[0].range.is_none());
        assert_eq!(pools[1].name, "boards");
    }
}

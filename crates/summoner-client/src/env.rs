//! The environment variables a lease is exported as.
//!
//! `summoner lease -- CMD`, `summoner up` and the CI runner all hand a lease to processes the
//! same way, so the naming lives here, once:
//!
//! - `SUMMONER_<POOL>_<I>_NAME`: the name of the `I`-th resource (from 0) of pool `POOL` in
//!   the grant;
//! - `SUMMONER_<POOL>_<I>_<PROP>`: each of its props;
//! - `SUMMONER_<POOL>_NAME` and `SUMMONER_<POOL>_<PROP>`: the same for index 0, the common
//!   case of one resource per pool.
//!
//! `POOL` and `PROP` are upper-cased, and every character other than an ASCII letter or digit
//! becomes `_` (`ci-boards` → `CI_BOARDS`). Prop values are written as JSON would write them,
//! without quotes around strings. When a prop is called `name`, the resource's name wins.

use summoner_protocol::GrantedResource;

/// The variable name part for a pool or prop name: upper-cased, other characters `_`.
pub fn env_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The variables for the resources of one grant, in grant order (per resource: the name,
/// then the props sorted by name; the unindexed forms follow the indexed ones of index 0).
pub fn lease_env(resources: &[GrantedResource]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    // Counts per pool, in first-seen order: grants are small, so a linear scan is cheaper
    // than a map and keeps the output order obvious.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for resource in resources {
        let index = match seen.iter_mut().find(|(pool, _)| *pool == resource.pool) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                seen.push((&resource.pool, 1));
                0
            }
        };
        let pool = env_key(&resource.pool);
        let mut own: Vec<(String, String)> = vec![("NAME".to_owned(), resource.name.clone())];
        for (key, value) in &resource.props {
            let key = env_key(key);
            if key == "NAME" {
                continue;
            }
            own.push((key, value.to_string()));
        }
        for (key, value) in &own {
            vars.push((format!("SUMMONER_{pool}_{index}_{key}"), value.clone()));
        }
        if index == 0 {
            for (key, value) in own {
                vars.push((format!("SUMMONER_{pool}_{key}"), value));
            }
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use summoner_protocol::{Labels, PropValue, Props};

    use super::*;

    fn resource(pool: &str, name: &str, props: &[(&str, PropValue)]) -> GrantedResource {
        GrantedResource {
            pool: pool.into(),
            name: name.into(),
            labels: Labels::new(),
            props: props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<Props>(),
        }
    }

    #[test]
    fn names_are_upper_cased_with_underscores() {
        assert_eq!(env_key("ci-boards.v2"), "CI_BOARDS_V2");
        assert_eq!(env_key("Ports"), "PORTS");
        assert_eq!(env_key("é"), "_");
    }

    #[test]
    fn each_resource_is_indexed_within_its_pool() {
        let vars = lease_env(&[
            resource("ports", "20000", &[("port", 20000u64.into())]),
            resource(
                "boards",
                "rpi-1",
                &[("ip", "10.0.0.5".into()), ("usb", true.into())],
            ),
            resource("ports", "20001", &[("port", 20001u64.into())]),
        ]);
        let text: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            [
                "SUMMONER_PORTS_0_NAME=20000",
                "SUMMONER_PORTS_0_PORT=20000",
                "SUMMONER_PORTS_NAME=20000",
                "SUMMONER_PORTS_PORT=20000",
                "SUMMONER_BOARDS_0_NAME=rpi-1",
                "SUMMONER_BOARDS_0_IP=10.0.0.5",
                "SUMMONER_BOARDS_0_USB=true",
                "SUMMONER_BOARDS_NAME=rpi-1",
                "SUMMONER_BOARDS_IP=10.0.0.5",
                "SUMMONER_BOARDS_USB=true",
                "SUMMONER_PORTS_1_NAME=20001",
                "SUMMONER_PORTS_1_PORT=20001",
            ]
        );
    }

    #[test]
    fn the_resource_name_wins_over_a_prop_called_name() {
        let vars = lease_env(&[resource("hosts", "h1", &[("name", "other".into())])]);
        assert!(vars.iter().all(|(_, v)| v == "h1"), "{vars:?}");
    }
}

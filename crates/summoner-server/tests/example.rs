//! `examples/summoner.toml` loads and says what it claims. Alone in its test binary because
//! it sets an environment variable (the example's `secret_env`), which is only sound while no
//! other thread reads the environment.

use std::path::Path;
use std::time::Duration;

use summoner_server::{Role, ServerConfig};

#[test]
fn the_example_file_loads() {
    // SAFETY: this is the only test of its binary, so no other thread reads the environment
    // while it is written.
    unsafe { std::env::set_var("SUMMONER_CI_TOKEN", "from-the-environment") };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/summoner.toml");
    let config = ServerConfig::load(&path).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7878");
    assert_eq!(config.position_interval, Duration::from_secs(1));
    assert_eq!(config.http.max_connections, 20_000);
    assert_eq!(config.http.allowed_hosts, ["summoner.lab.example"]);
    assert_eq!(config.tokens.len(), 2);
    assert_eq!(config.tokens[1].role, Role::Admin);
    let names: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ports", "boards", "vhosts"]);
    assert_eq!(config.pools[1].max_hold, Some(Duration::from_secs(7200)));
    assert!(!config.pools[1].resources[1].enabled);
    assert_eq!(config.pools[2].resources[0].capacity, 4);
    // Secrets stay out of debug output.
    let debug = format!("{config:?}");
    assert!(!debug.contains("change-me"), "{debug}");
}

//! `summoner.toml`: defaults and the errors people will see.

use std::path::{Path, PathBuf};
use std::time::Duration;

use summoner_server::{ConfigError, Role, ServerConfig, SyncMode};

fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    ServerConfig::parse(text, Path::new("summoner.toml"))
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn defaults_make_a_usable_server() {
    let config = ServerConfig::default();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7878");
    assert_eq!(config.data_dir, PathBuf::from(".summoner"));
    assert_eq!(config.ping_interval, Duration::from_secs(5));
    assert_eq!(config.resume_grace, Duration::from_secs(30));
    assert_eq!(config.sync, SyncMode::Full);
    assert_eq!(config.checkpoint_events, 100_000);
    assert_eq!(config.history_retention, Duration::from_secs(90 * 86_400));
    assert!(config.tokens.is_empty());
    assert_eq!(config.pools.len(), 1);
    assert_eq!(config.pools[0].name, "ports");
    assert_eq!(config.pools[0].expand().unwrap().len(), 100);
    config.check().unwrap();
    // An empty file is the same as no file.
    assert_eq!(parse("").unwrap(), config);
    // `pool = []` means no pools at all.
    assert!(parse("pool = []").unwrap().pools.is_empty());
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let text = "listen = \"127.0.0.1:7878\"\nresume_grase = \"5m\"\n";
    let err = parse(text).unwrap_err();
    let ConfigError::Parse { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*line, *column), (2, 1));
    let message = err.to_string();
    assert!(
        message.starts_with("summoner.toml:2:1: unknown field `resume_grase`"),
        "{message}"
    );
    assert!(
        message.contains("resume_grace"),
        "the valid keys are listed: {message}"
    );
    assert!(message.contains("  2 | resume_grase = \"5m\""), "{message}");

    // Inside a pool too (the broker's types reject unknown keys as well).
    let message = error("[[pool]]\nname = \"p\"\n[[pool.resource]]\nname = \"a\"\nlabel = {}\n");
    assert!(
        message.starts_with("summoner.toml:5:1: unknown field `label`"),
        "{message}"
    );
}

#[test]
fn bad_values_are_refused() {
    let message = error("ping_interval = \"5 seconds\"");
    assert!(
        message.starts_with("summoner.toml:1:17: expected a duration"),
        "{message}"
    );
    // A bare number is asked for its unit, as in `.summoner.yml` and on the command line.
    let message = error("resume_grace = 30");
    assert!(
        message.starts_with("summoner.toml:1:16: `30` has no unit: write `30s` or `30ms`"),
        "{message}"
    );
    let message = error("sync = \"sometimes\"");
    assert!(message.contains("unknown variant `sometimes`"), "{message}");
    let message = error("listen = \"localhost\"");
    assert!(message.starts_with("summoner.toml:1:10:"), "{message}");
    assert_eq!(
        error("ping_interval = \"0s\""),
        "`ping_interval` must be more than 0s"
    );
    let message = error("[[pool]]\nname = \"p\"\nrange = { from = 5, to = 1 }\n");
    assert!(message.contains("range from 5 to 1 is empty"), "{message}");
    let message = error("[[pool]]\nname = \"p\"\n[[pool]]\nname = \"p\"\n");
    assert_eq!(message, "pool `p` is defined twice");
}

#[test]
fn tokens_are_checked() {
    assert_eq!(
        error("listen = \"0.0.0.0:7878\""),
        "refusing to listen on 0.0.0.0:7878 without a [[token]]: anyone who can reach it could \
         take and revoke resources; add a token or listen on 127.0.0.1"
    );
    let ok =
        parse("listen = \"0.0.0.0:7878\"\n[[token]]\nname = \"ci\"\nsecret = \"x\"\n").unwrap();
    assert_eq!(ok.tokens[0].role, Role::Client);
    assert_eq!(
        error("[[token]]\nname = \"ci\"\nsecret_env = \"SUMMONER_TEST_SURELY_UNSET\"\n"),
        "token `ci`: environment variable `SUMMONER_TEST_SURELY_UNSET` (its secret_env) is not set"
    );
    assert_eq!(
        error("[[token]]\nname = \"ci\"\nsecret = \"a\"\nsecret_env = \"HOME\"\n"),
        "token `ci` must have exactly one of `secret` and `secret_env`"
    );
    assert_eq!(
        error("[[token]]\nname = \"ci\"\n"),
        "token `ci` must have exactly one of `secret` and `secret_env`"
    );
    assert_eq!(
        error("[[token]]\nname = \"a\"\nsecret = \"x\"\n[[token]]\nname = \"b\"\nsecret = \"x\"\n"),
        "token `b` is defined twice (by name or by secret)"
    );
    let message = error("[[token]]\nname = \"ci\"\nsecret = \"x\"\nrole = \"root\"\n");
    assert!(message.contains("unknown variant `root`"), "{message}");
}

#[test]
fn a_missing_file_says_which() {
    let err = ServerConfig::load(Path::new("/nonexistent/summoner.toml")).unwrap_err();
    assert_eq!(err.to_string(), "cannot read /nonexistent/summoner.toml");
}

#[test]
fn checkpoints_need_a_positive_interval() {
    assert!(
        error("checkpoint_events = 0").contains("`checkpoint_events` must be at least 1"),
        "{}",
        error("checkpoint_events = 0")
    );
    let config = parse("history_retention = \"0s\"\ncheckpoint_events = 10").unwrap();
    assert_eq!(config.history_retention, Duration::ZERO);
}

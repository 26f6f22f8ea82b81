//! `#[serde(with = ...)]` for durations written as `"30s"`, `"10m"`, `"1h30m"`.
//!
//! The parser and formatter are the broker's ([`summoner_broker::parse_duration`]), so a
//! server field and a pool's `max_hold` accept exactly the same forms; only this thin serde
//! adapter is repeated, because the broker keeps its own adapter private.

use std::time::Duration;

pub(crate) mod serde_duration {
    use super::Duration;
    use serde::{Deserialize, Deserializer, Serializer};
    use summoner_broker::{format_duration, parse_duration};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

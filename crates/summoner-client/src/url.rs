//! Server addresses: what users type (`http://ci:7878`) and what the client dials.

use std::fmt;

use crate::error::Error;

/// The path of the lease WebSocket, relative to the server's base URL.
pub const LEASE_PATH: &str = "/v1/lease";

/// A summoner server's address in both forms the tools need: the WebSocket URL of the lease
/// protocol and the base URL of the HTTP API.
///
/// Users give the address they see in `summoner serve`'s output (`http://127.0.0.1:7878`),
/// so that one `SUMMONER_SERVER` serves `summoner lease` and `summoner status` alike. A
/// `ws://` or `wss://` URL is accepted too, with or without the `/v1/lease` path, and a bare
/// `host:port` means `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    ws: String,
    http: String,
}

impl ServerUrl {
    /// Parses a server address.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: input.to_owned(),
            reason: reason.to_owned(),
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), text),
        };
        let (ws_scheme, http_scheme) = match scheme.as_str() {
            "http" | "ws" => ("ws", "http"),
            "https" | "wss" => ("wss", "https"),
            _ => {
                return Err(invalid(
                    "the scheme must be http://, https://, ws:// or wss://",
                ));
            }
        };
        if rest.contains(['?', '#']) {
            return Err(invalid(
                "a query or fragment is not supported (pass a token with --token or \
                 SUMMONER_TOKEN)",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(invalid("it names no host"));
        }
        if authority.contains(char::is_whitespace) {
            return Err(invalid("the host contains a space"));
        }
        let path = path.trim_end_matches('/');
        let base = path.strip_suffix(LEASE_PATH).unwrap_or(path);
        Ok(ServerUrl {
            ws: format!("{ws_scheme}://{authority}{base}{LEASE_PATH}"),
            http: format!("{http_scheme}://{authority}{base}"),
        })
    }

    /// The WebSocket URL of the lease protocol, e.g. `ws://127.0.0.1:7878/v1/lease`.
    pub fn ws(&self) -> &str {
        &self.ws
    }

    /// The HTTP base URL, without a trailing slash, e.g. `http://127.0.0.1:7878`; API paths
    /// such as `/v1/pools` are appended to it.
    pub fn http(&self) -> &str {
        &self.http
    }
}

/// Shown as the HTTP base URL: what the user typed, normalised.
impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.http)
    }
}

impl std::str::FromStr for ServerUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(s: &str) -> (String, String) {
        let url = ServerUrl::parse(s).unwrap();
        (url.ws().to_owned(), url.http().to_owned())
    }

    #[test]
    fn http_maps_to_the_lease_websocket() {
        assert_eq!(
            both("http://127.0.0.1:7878"),
            (
                "ws://127.0.0.1:7878/v1/lease".into(),
                "http://127.0.0.1:7878".into()
            )
        );
        assert_eq!(
            both("https://ci.example.com/"),
            (
                "wss://ci.example.com/v1/lease".into(),
                "https://ci.example.com".into()
            )
        );
        assert_eq!(
            both("https://ci.example.com/broker/").0,
            "wss://ci.example.com/broker/v1/lease"
        );
        assert_eq!(
            both("https://ci.example.com/broker/").1,
            "https://ci.example.com/broker"
        );
    }

    #[test]
    fn websocket_urls_are_kept() {
        assert_eq!(
            both("ws://h:1/v1/lease"),
            ("ws://h:1/v1/lease".into(), "http://h:1".into())
        );
        assert_eq!(both("WSS://h:1").0, "wss://h:1/v1/lease");
    }

    #[test]
    fn a_bare_address_means_http() {
        assert_eq!(both("localhost:7878").0, "ws://localhost:7878/v1/lease");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let err = ServerUrl::parse("ftp://h").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid server url `ftp://h`: the scheme must be http://, https://, ws:// or wss://"
        );
        assert!(ServerUrl::parse("").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("http://h/?token=x").is_err());
    }
}

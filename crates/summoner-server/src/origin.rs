//! Where a request says it is going (`Host`) and which page sent it (`Origin`): parsing and
//! comparison, with no opinion on what to allow (that is `guard.rs`).
//!
//! Both headers are compared as parsed values, not as text: host names are case-insensitive,
//! `[::1]` and `[0:0:0:0:0:0:0:1]` are one address, and an origin's default port may be left
//! out (`http://h` is `http://h:80`).

use std::fmt;
use std::net::IpAddr;

/// A host: an IP address or a lower-cased name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

/// `host[:port]`, as in a `Host` header or an `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    pub host: Host,
    pub port: Option<u16>,
}

impl Authority {
    /// Parses `name`, `name:port`, `1.2.3.4[:port]` or `[v6][:port]`; `None` for anything
    /// else (a path, user info, an empty or non-numeric port, characters no host name has).
    pub fn parse(text: &str) -> Option<Self> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (Host::Ip(IpAddr::V6(v6.parse().ok()?)), port)
        } else {
            let (host, port) = match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            let host = match host.parse::<IpAddr>() {
                // A bare IPv6 address has colons of its own; it must be bracketed.
                Ok(IpAddr::V6(_)) => return None,
                Ok(ip) => Host::Ip(ip),
                Err(_) if is_name(host) => Host::Name(host.to_ascii_lowercase()),
                Err(_) => return None,
            };
            (host, port)
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse().ok()?)
            }
            Some(_) => return None,
        };
        Some(Self { host, port })
    }

    /// The port, or the scheme's default when none is written.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
            Host::Name(name) => f.write_str(name)?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// A host name: letters, digits, `-`, `_` and dots, as DNS and `/etc/hosts` use them.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 443;

/// `scheme://host[:port]`, as browsers send it in `Origin` (never with a path). Only `http`
/// and `https` parse: `null` (a sandboxed page, a local file) and other schemes are no
/// origin that can be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    https: bool,
    pub authority: Authority,
}

impl Origin {
    pub fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        Some(Self {
            https,
            authority: Authority::parse(rest)?,
        })
    }

    /// The port the page was served from, written or implied by the scheme.
    pub fn port(&self) -> u16 {
        self.authority
            .port_or(if self.https { HTTPS_PORT } else { HTTP_PORT })
    }

    /// Whether a page of this origin, asking for `host`, asks the server it came from. The
    /// scheme is not compared: behind a TLS proxy the page is `https://h` and the request
    /// reaches the server as `Host: h`.
    pub fn is_same_as(&self, host: &Authority) -> bool {
        self.authority.host == host.host && self.port() == host.port_or(self.port())
    }

    /// Whether two origins are the same (scheme, host and port).
    pub fn matches(&self, other: &Origin) -> bool {
        self.https == other.https
            && self.authority.host == other.authority.host
            && self.port() == other.port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> Authority {
        Authority::parse(text).unwrap_or_else(|| panic!("`{text}` parses"))
    }

    #[test]
    fn authorities() {
        let a = authority("LocalHost:7878");
        assert_eq!(a.host, Host::Name("localhost".into()));
        assert_eq!(a.port, Some(7878));
        assert_eq!(authority("summoner.lab.example").port, None);
        assert_eq!(authority("[0:0::1]:7878"), authority("[::1]:7878"));
        assert_eq!(
            authority("10.0.0.5").host,
            Host::Ip("10.0.0.5".parse().unwrap())
        );
        assert_eq!(authority("[::1]:7878").to_string(), "[::1]:7878");
        for bad in [
            "",
            ":7878",
            "host:",
            "host:port",
            "host:99999",
            "::1",
            "[::1",
            "[::1]x",
            "user@host",
            "host/path",
            "host:+80",
            "ho st",
        ] {
            assert_eq!(Authority::parse(bad), None, "`{bad}` is refused");
        }
    }

    #[test]
    fn origins() {
        let host = authority("127.0.0.1:7878");
        assert!(
            Origin::parse("http://127.0.0.1:7878")
                .unwrap()
                .is_same_as(&host)
        );
        assert!(
            !Origin::parse("http://127.0.0.1:7879")
                .unwrap()
                .is_same_as(&host)
        );
        assert!(
            !Origin::parse("http://evil.example")
                .unwrap()
                .is_same_as(&host)
        );
        // Default ports are implied on both sides.
        let proxied = authority("summoner.lab.example");
        assert!(
            Origin::parse("https://summoner.lab.example")
                .unwrap()
                .is_same_as(&proxied)
        );
        assert!(
            Origin::parse("http://summoner.lab.example")
                .unwrap()
                .is_same_as(&authority("summoner.lab.example:80"))
        );
        let a = Origin::parse("HTTPS://Dash.Example").unwrap();
        assert!(a.matches(&Origin::parse("https://dash.example:443").unwrap()));
        assert!(!a.matches(&Origin::parse("http://dash.example").unwrap()));
        for bad in [
            "null",
            "file://",
            "ftp://x",
            "http://x/",
            "http://x/path",
            "http://",
        ] {
            assert_eq!(Origin::parse(bad), None, "`{bad}` is refused");
        }
    }
}

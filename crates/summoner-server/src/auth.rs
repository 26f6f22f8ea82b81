//! Tokens: who may lease, read and administer.
//!
//! A token comes as `Authorization: Bearer T` or, for clients that cannot set headers on a
//! WebSocket handshake (browsers, some libraries), as `?token=T`. With no tokens configured
//! the server is open, which the config allows only on a loopback address.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::config::{Role, Token};

/// The configured tokens.
#[derive(Debug)]
pub(crate) struct Auth {
    tokens: Vec<Token>,
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No tokens are configured: everyone may do everything (loopback only).
    Open,
    /// A valid token with this role.
    Token(Role),
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No token, or not a valid one: 401.
    Unauthorized,
    /// A valid token whose role may not do this: 403.
    Forbidden,
}

impl Auth {
    pub fn new(tokens: Vec<Token>) -> Self {
        Self { tokens }
    }

    /// Whether tokens are required at all.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Identifies the caller from the `Authorization` header or the `token` query parameter.
    pub fn caller(&self, headers: &HeaderMap, query_token: Option<&str>) -> Result<Caller, Denied> {
        if self.is_open() {
            return Ok(Caller::Open);
        }
        let header = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let Some(given) = header.or(query_token) else {
            return Err(Denied::Unauthorized);
        };
        // Every token is compared, each in constant time, so the time taken says nothing about
        // which token (or which prefix of one) came close.
        let mut found = None;
        for token in &self.tokens {
            if constant_time_eq(given.as_bytes(), token.secret.as_bytes()) {
                found = Some(token);
            }
        }
        match found {
            Some(token) => {
                tracing::trace!(token = token.name, "authorized");
                Ok(Caller::Token(token.role))
            }
            None => Err(Denied::Unauthorized),
        }
    }

    /// Like [`Auth::caller`], and the caller must be an admin.
    pub fn admin(&self, headers: &HeaderMap, query_token: Option<&str>) -> Result<(), Denied> {
        match self.caller(headers, query_token)? {
            Caller::Open | Caller::Token(Role::Admin) => Ok(()),
            Caller::Token(Role::Client) => Err(Denied::Forbidden),
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimizer from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn auth() -> Auth {
        Auth::new(vec![
            Token {
                name: "ci".into(),
                secret: "client-secret".into(),
                role: Role::Client,
            },
            Token {
                name: "ops".into(),
                secret: "admin-secret".into(),
                role: Role::Admin,
            },
        ])
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn tokens_and_roles() {
        let auth = auth();
        let none = HeaderMap::new();
        assert_eq!(auth.caller(&none, None), Err(Denied::Unauthorized));
        assert_eq!(
            auth.caller(&bearer("nope"), None),
            Err(Denied::Unauthorized)
        );
        assert_eq!(
            auth.caller(&bearer("client-secret"), None),
            Ok(Caller::Token(Role::Client))
        );
        assert_eq!(
            auth.caller(&none, Some("admin-secret")),
            Ok(Caller::Token(Role::Admin))
        );
        assert_eq!(
            auth.admin(&bearer("client-secret"), None),
            Err(Denied::Forbidden)
        );
        assert_eq!(auth.admin(&bearer("admin-secret"), None), Ok(()));
        assert_eq!(Auth::new(vec![]).caller(&none, None), Ok(Caller::Open));
    }

    #[test]
    fn compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

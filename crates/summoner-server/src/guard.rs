//! The rules that keep a browser from acting for an attacker, checked on every request
//! before any handler (and before the token, so the answer does not depend on it).
//!
//! A server open on loopback is reachable from every page a browser on the machine shows.
//! Three doors stay shut:
//!
//! - **DNS rebinding.** A page of `evil.example` whose name later resolves to 127.0.0.1 talks
//!   to the server as same-origin; but its requests say `Host: evil.example`. Rebinding needs
//!   a name the attacker controls, so `Host` must be an IP address, `localhost`, or an
//!   `http.allowed_hosts` entry; refused with 421 `host_not_allowed`. The port is not
//!   compared: a tunnelled or port-mapped server (`ssh -L 9000:localhost:7878`, `docker -p
//!   8080:7878`) is rightly reached as `localhost:9000`, and no page can make a browser send
//!   an address or `localhost` as `Host` to a server that is not at that address. (Vite,
//!   webpack's dev server and Jupyter draw the same line.)
//! - **Cross-site requests.** A page may send a POST anywhere, without asking (a "simple"
//!   request: a form, or `fetch` with a `text/plain` body), and open a WebSocket anywhere;
//!   browsers then say which page in `Origin`. A request that changes something (any method
//!   but GET, HEAD, OPTIONS and TRACE) and every WebSocket upgrade must come from a page of
//!   this server (`Origin` naming the same host and port as `Host`) or of an
//!   `http.allowed_origins` entry; refused with 403 `origin_not_allowed`. Requests without
//!   `Origin` (curl, the clients, scripts) are not browsers' and pass.
//! - **Bodies that need no preflight.** A request that changes something must send its body
//!   as `application/json`, which a page can only send cross-site after a CORS preflight that
//!   this server never approves. A body of another type (or of none) is refused with 415
//!   `unsupported_media_type`; a request without a body needs no type.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING, UPGRADE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use summoner_protocol::api::ApiErrorCode;

use crate::error::ApiError;
use crate::origin::{Authority, Host, Origin};

/// What [`check`] allows.
#[derive(Debug)]
pub(crate) struct Guard {
    allowed_hosts: Vec<Authority>,
    allowed_origins: Vec<Origin>,
}

impl Guard {
    /// The rules, with the configured hosts and origins. Entries that do not parse are
    /// skipped: the config's check refuses them before the server starts.
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        Self {
            allowed_hosts: allowed_hosts
                .iter()
                .filter_map(|h| Authority::parse(h))
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .filter_map(|o| Origin::parse(o))
                .collect(),
        }
    }

    /// The request's `Host`, if no DNS-rebinding page can have sent it.
    fn host(&self, headers: &HeaderMap) -> Result<Authority, ApiError> {
        let Some(value) = headers.get(HOST) else {
            return Err(ApiError::bad_request(
                "the Host header is required (HTTP/1.1)",
            ));
        };
        let text = value.to_str().unwrap_or("");
        let refused = || {
            ApiError::new(
                ApiErrorCode::HostNotAllowed,
                format!(
                    "Host `{}` is not a name of this server: a name that reaches it must be \
                     listed in `http.allowed_hosts` (this rule stops DNS rebinding)",
                    text.escape_debug()
                ),
            )
        };
        let host = Authority::parse(text).ok_or_else(refused)?;
        let ours = matches!(host.host, Host::Ip(_))
            || host.host == Host::Name("localhost".into())
            || self.allowed_hosts.iter().any(|allowed| {
                allowed.host == host.host
                    && allowed.port.is_none_or(|port| port == host.port_or(80))
            });
        if ours { Ok(host) } else { Err(refused()) }
    }

    /// Whether `origin` may change things and open WebSockets for a request to `host`.
    fn origin_allowed(&self, origin: &HeaderValue, host: &Authority) -> bool {
        let Some(origin) = origin.to_str().ok().and_then(Origin::parse) else {
            return false;
        };
        origin.is_same_as(host) || self.allowed_origins.iter().any(|o| o.matches(&origin))
    }
}

/// The middleware: refuses what breaks a rule, with the rule's code, and passes the rest on.
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&guard, &request) {
        Some(refused) => {
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                "refused at the edge: {refused:?}"
            );
            refused.into_response()
        }
        None => next.run(request).await,
    }
}

fn refusal(guard: &Guard, request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let host = match guard.host(headers) {
        Ok(host) => host,
        Err(refused) => return Some(refused),
    };
    let changes = !request.method().is_safe();
    if !changes && !headers.contains_key(UPGRADE) {
        return None;
    }
    if let Some(origin) = headers.get(ORIGIN)
        && !guard.origin_allowed(origin, &host)
    {
        return Some(ApiError::new(
            ApiErrorCode::OriginNotAllowed,
            format!(
                "Origin `{}` may not change anything here nor open a WebSocket: only pages of \
                 this server and of the origins in `http.allowed_origins` may (requests \
                 without an Origin, from programs rather than browsers, are not concerned)",
                origin.to_str().unwrap_or("(not text)").escape_debug()
            ),
        ));
    }
    if changes {
        return json_body(headers).err();
    }
    None
}

/// A request that changes something: its body, if any, must be declared JSON.
fn json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(CONTENT_TYPE) {
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let essence = text.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/json") {
                Ok(())
            } else {
                Err(ApiError::new(
                    ApiErrorCode::UnsupportedMediaType,
                    format!(
                        "a request that changes something must send its body as \
                         `Content-Type: application/json`, not `{}`",
                        text.escape_debug()
                    ),
                ))
            }
        }
        None => {
            let empty = !headers.contains_key(TRANSFER_ENCODING)
                && headers
                    .get(CONTENT_LENGTH)
                    .is_none_or(|length| length.as_bytes() == b"0");
            if empty {
                Ok(())
            } else {
                Err(ApiError::new(
                    ApiErrorCode::UnsupportedMediaType,
                    "a request that changes something must send its body as \
                     `Content-Type: application/json`; this one has a body and no Content-Type",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Method;

    use super::*;

    const LISTEN: &str = "127.0.0.1:7878";

    fn guard() -> Guard {
        Guard::new(
            &["summoner.lab.example".into(), "proxy.example:8080".into()],
            &["https://dash.example".into()],
        )
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri("/v1/pools");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn code(guard: &Guard, method: Method, headers: &[(&str, &str)]) -> Option<u16> {
        refusal(guard, &request(method, headers)).map(|e| e.status().as_u16())
    }

    #[test]
    fn host_must_be_an_address_localhost_or_allowed() {
        let g = guard();
        for ok in [
            LISTEN,
            // Tunnelled or port-mapped.
            "127.0.0.1:9000",
            "10.0.0.5:7878",
            "[::1]:7878",
            "localhost:7878",
            "LOCALHOST:9000",
            "localhost",
            "summoner.lab.example",
            "summoner.lab.example:9999",
            "proxy.example:8080",
        ] {
            assert_eq!(code(&g, Method::GET, &[("host", ok)]), None, "{ok}");
        }
        for refused in [
            "evil.example:7878",
            "evil.example",
            "localhost.evil.example:7878",
            "proxy.example",
            "proxy.example:8081",
            "127.0.0.1:7878/x",
            "",
        ] {
            assert_eq!(
                code(&g, Method::GET, &[("host", refused)]),
                Some(421),
                "{refused}"
            );
        }
        assert_eq!(code(&g, Method::GET, &[]), Some(400));
    }

    #[test]
    fn origin_is_checked_on_changes_and_upgrades() {
        let g = guard();
        let host = ("host", LISTEN);
        let json = ("content-type", "application/json");
        // Reads are not concerned, even cross-site.
        assert_eq!(
            code(&g, Method::GET, &[host, ("origin", "http://evil.example")]),
            None
        );
        for refused in ["http://evil.example", "null", "http://127.0.0.1:7879"] {
            assert_eq!(
                code(&g, Method::POST, &[host, json, ("origin", refused)]),
                Some(403),
                "{refused}"
            );
            assert_eq!(
                code(
                    &g,
                    Method::GET,
                    &[host, ("upgrade", "websocket"), ("origin", refused)]
                ),
                Some(403),
                "{refused}"
            );
        }
        for ok in ["http://127.0.0.1:7878", "https://dash.example"] {
            assert_eq!(
                code(&g, Method::DELETE, &[host, ("origin", ok)]),
                None,
                "{ok}"
            );
        }
        assert_eq!(code(&g, Method::POST, &[host, json]), None);
    }

    #[test]
    fn changes_need_json_bodies() {
        let g = guard();
        let host = ("host", LISTEN);
        for refused in [
            &[host, ("content-type", "text/plain")][..],
            &[
                host,
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "0"),
            ],
            &[host, ("content-length", "12")],
            &[host, ("transfer-encoding", "chunked")],
        ] {
            assert_eq!(code(&g, Method::POST, refused), Some(415), "{refused:?}");
        }
        for ok in [
            &[host, ("content-type", "application/json; charset=utf-8")][..],
            &[host, ("content-type", "Application/JSON")],
            &[host],
            &[host, ("content-length", "0")],
        ] {
            assert_eq!(code(&g, Method::POST, ok), None, "{ok:?}");
        }
    }
}

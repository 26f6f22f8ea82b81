//! The same client for code without an async runtime: test harnesses, build scripts, the
//! synchronous parts of `summoner` itself.
//!
//! A [`Client`] runs a private current-thread tokio runtime on a background thread, where
//! the connection task lives; each method hands its work to that thread and blocks until
//! the answer comes back. The methods must not be called from inside an async runtime
//! (they would block one of its threads); use [`crate::Client`] there.
//!
//! ```no_run
//! use summoner_client::blocking::Client;
//! use summoner_client::Request;
//!
//! let client = Client::connect("http://127.0.0.1:7878", None)?;
//! let lease = client.acquire(Request::one("ports"))?.into_guard();
//! let port = &lease.resources()[0].props["port"];
//! println!("testing on port {port}");
//! // Dropping the guard releases the lease.
//! # Ok::<(), summoner_client::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use summoner_protocol::SessionId;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::request::Request;
use crate::url::ServerUrl;

/// The background thread and its runtime; closed when the last client, lease or guard
/// that shares it is dropped.
struct Shared {
    client: crate::Client,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Shared {
    /// Runs `fut` on the runtime thread and waits for its output.
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        run_on(&self.handle, fut)
    }
}

fn run_on<F>(handle: &Handle, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.blocking_recv()
        .expect("the runtime thread outlives every handle that uses it")
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Close cleanly (a close frame makes the server release at once), then stop the
        // runtime: stopping it first would drop the connection without a close frame, which
        // a server set to `dropped_connection = "keep"` answers by keeping the leases for its
        // resume grace.
        let client = self.client.clone();
        run_on(&self.handle, client.close());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A blocking handle on one connection; see [`crate::Client`] for the semantics. Clones
/// share the connection.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client")
            .field("url", self.shared.client.url())
            .field("session", &self.shared.client.session())
            .finish()
    }
}

/// Options for a blocking [`Client`]; start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    inner: crate::ClientBuilder,
}

impl ClientBuilder {
    /// See [`crate::ClientBuilder::token`].
    pub fn token(self, token: impl Into<String>) -> Self {
        Self {
            inner: self.inner.token(token),
        }
    }

    /// See [`crate::ClientBuilder::token_opt`].
    pub fn token_opt(self, token: Option<String>) -> Self {
        Self {
            inner: self.inner.token_opt(token),
        }
    }

    /// See [`crate::ClientBuilder::connect_timeout`].
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.connect_timeout(timeout),
        }
    }

    /// See [`crate::ClientBuilder::reconnect_for`].
    pub fn reconnect_for(self, window: Duration) -> Self {
        Self {
            inner: self.inner.reconnect_for(window),
        }
    }

    /// See [`crate::ClientBuilder::no_reconnect`].
    pub fn no_reconnect(self) -> Self {
        Self {
            inner: self.inner.no_reconnect(),
        }
    }

    /// Starts the runtime thread and connects.
    pub fn connect(self) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("summoner-client")
            .build()
            .map_err(|e| Error::Protocol(format!("cannot start the client's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("summoner-client".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| Error::Protocol(format!("cannot start the client's thread: {e}")))?;
        let connected = run_on(&handle, self.inner.connect());
        match connected {
            Ok(client) => Ok(Client {
                shared: Arc::new(Shared {
                    client,
                    handle,
                    stop: Some(stop),
                    thread: Some(thread),
                }),
            }),
            Err(e) => {
                let _ = stop.send(());
                let _ = thread.join();
                Err(e)
            }
        }
    }
}

impl Client {
    /// Connects to the server at `url` with an optional token; see
    /// [`crate::Client::connect`].
    pub fn connect(url: &str, token: Option<&str>) -> Result<Client> {
        Self::builder(url)
            .token_opt(token.map(str::to_owned))
            .connect()
    }

    /// A builder for a client with non-default options.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            inner: crate::Client::builder(url),
        }
    }

    /// The session id; see [`crate::Client::session`].
    pub fn session(&self) -> SessionId {
        self.shared.client.session()
    }

    /// The server this client talks to.
    pub fn url(&self) -> &ServerUrl {
        self.shared.client.url()
    }

    /// Blocks until the request is granted or fails; see [`crate::Client::acquire`].
    pub fn acquire(&self, request: Request) -> Result<Lease> {
        let client = self.shared.client.clone();
        let lease = self
            .shared
            .run(async move { client.acquire(request).await })?;
        Ok(Lease {
            inner: Some(lease),
            shared: self.shared.clone(),
        })
    }

    /// Closes the connection cleanly (the server releases everything at once) and waits.
    /// Other handles see [`Error::Closed`] from then on.
    pub fn close(self) {
        let client = self.shared.client.clone();
        self.shared.run(client.close());
    }
}

/// A granted lease; see [`crate::Lease`]. Dropping it does not release it; use
/// [`Lease::release`] or [`Lease::into_guard`].
pub struct Lease {
    /// Always `Some` until consumed.
    inner: Option<crate::Lease>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Lease").field(&**self).finish()
    }
}

impl Deref for Lease {
    type Target = crate::Lease;
    fn deref(&self) -> &crate::Lease {
        self.inner.as_ref().expect("a lease is held until consumed")
    }
}

impl Lease {
    /// Releases the lease and waits for the server's confirmation.
    pub fn release(mut self) -> Result<()> {
        let lease = self.inner.take().expect("a lease is held until consumed");
        self.shared.run(lease.release())
    }

    /// Blocks until the lease ends without a release, and says why; see
    /// [`crate::Lease::revoked`].
    pub fn wait_revoked(&self) -> String {
        self.shared.run(self.revoked())
    }

    /// Calls `f` with the reason if the lease ends without a release (see
    /// [`crate::Lease::revoked`]). It runs on the client's thread: send, do not block.
    pub fn on_revoked(&self, f: impl FnOnce(String) + Send + 'static) {
        let revoked = self.revoked();
        self.shared.handle.spawn(async move { f(revoked.await) });
    }

    /// A guard that releases the lease when dropped.
    pub fn into_guard(mut self) -> LeaseGuard {
        let lease = self.inner.take().expect("a lease is held until consumed");
        LeaseGuard {
            guard: Some(lease.into_guard()),
            shared: self.shared.clone(),
        }
    }
}

/// A lease released when the guard is dropped; see [`crate::LeaseGuard`].
pub struct LeaseGuard {
    /// Dropped before `shared`, so the release is queued before a possible close.
    guard: Option<crate::LeaseGuard>,
    shared: Arc<Shared>,
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::LeaseGuard")
            .field(&**self)
            .finish()
    }
}

impl Deref for LeaseGuard {
    type Target = crate::Lease;
    fn deref(&self) -> &crate::Lease {
        self.guard.as_ref().expect("a guard is held until consumed")
    }
}

impl LeaseGuard {
    /// Releases now and waits for the server's confirmation.
    pub fn release(mut self) -> Result<()> {
        let guard = self.guard.take().expect("a guard is held until consumed");
        self.shared.run(guard.release())
    }

    /// Blocks until the lease ends without a release; see [`crate::Lease::revoked`].
    pub fn wait_revoked(&self) -> String {
        self.shared.run(self.revoked())
    }

    /// See [`Lease::on_revoked`].
    pub fn on_revoked(&self, f: impl FnOnce(String) + Send + 'static) {
        let revoked = self.revoked();
        self.shared.handle.spawn(async move { f(revoked.await) });
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Explicit, because the order matters: the release message must be queued before
        // `shared` (possibly the last handle) closes the connection.
        drop(self.guard.take());
    }
}

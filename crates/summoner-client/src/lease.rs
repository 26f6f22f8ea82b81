//! A granted lease, and the guard that releases it on drop.

use std::future::Future;
use std::ops::Deref;

use summoner_protocol::{GrantedResource, LeaseId, RequestId, SessionId};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Command, Granted};
use crate::env::lease_env;
use crate::error::{Error, Result};

/// One resource of a lease: its pool, name, labels and props (the port number, the serial
/// device, the address: what the holder needs to use it).
pub type Resource = GrantedResource;

/// A granted acquire: the resources are this client's until [`Lease::release`], until the
/// server revokes the lease (see [`Lease::revoked`]), or until the client's connection closes.
///
/// Dropping a `Lease` does *not* release it (it stays held until the client is closed or
/// dropped); wrap it in a [`LeaseGuard`] with [`Lease::into_guard`] to release on drop.
#[derive(Debug)]
pub struct Lease {
    granted: Granted,
    tx: mpsc::UnboundedSender<Command>,
}

impl Lease {
    pub(crate) fn new(granted: Granted, tx: mpsc::UnboundedSender<Command>) -> Self {
        Lease { granted, tx }
    }

    /// The lease id, as the server and its dashboard show it.
    pub fn id(&self) -> &LeaseId {
        &self.granted.lease
    }

    /// The id of the request this lease answers.
    pub fn request_id(&self) -> &RequestId {
        &self.granted.request
    }

    /// The session that holds the lease (the session at the time of the grant).
    pub fn session(&self) -> &SessionId {
        &self.granted.session
    }

    /// The resources, in the order of the request's items.
    pub fn resources(&self) -> &[Resource] {
        &self.granted.resources
    }

    /// The environment variables that describe the resources (see [`crate::lease_env`]).
    pub fn env(&self) -> Vec<(String, String)> {
        lease_env(&self.granted.resources)
    }

    /// The grant as JSON: `{"lease", "session", "request", "resources": [{pool, name, labels,
    /// props}]}`; what `summoner lease` prints and writes to `SUMMONER_LEASE_FILE`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "lease": self.granted.lease,
            "session": self.granted.session,
            "request": self.granted.request,
            "resources": self.granted.resources,
        })
    }

    /// Gives the resources back and waits until the server confirms. A lease that already
    /// ended (revoked, or lost with the connection) releases trivially.
    pub async fn release(self) -> Result<()> {
        release(&self.tx, &self.granted.lease).await
    }

    /// Resolves, with the reason, when the lease ends without [`Lease::release`]: the server
    /// revoked it (an admin, the pool's max hold time, a removed resource), or it was lost
    /// because the connection could not be resumed, or the client was closed.
    ///
    /// It never resolves for a lease that is released normally. The future does not borrow
    /// the lease, so it can be spawned or selected on while the lease is used.
    pub fn revoked(&self) -> impl Future<Output = String> + Send + 'static {
        let mut ended = self.granted.ended.clone();
        async move {
            let reason = ended
                .wait_for(Option::is_some)
                .await
                .map(|reason| reason.clone().unwrap_or_default());
            match reason {
                Ok(reason) => reason,
                // Released: not a revocation.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Why the lease ended, if it has.
    pub fn ended(&self) -> Option<String> {
        self.granted.ended.borrow().clone()
    }

    /// A guard that releases the lease when dropped.
    pub fn into_guard(self) -> LeaseGuard {
        LeaseGuard { lease: Some(self) }
    }
}

pub(crate) async fn release(tx: &mpsc::UnboundedSender<Command>, lease: &LeaseId) -> Result<()> {
    let (reply, rx) = oneshot::channel();
    tx.send(Command::Release {
        lease: lease.clone(),
        reply: Some(reply),
    })
    .map_err(|_| Error::Closed)?;
    match rx.await {
        Ok(result) => result,
        // The connection task ended; its close released everything.
        Err(_) => Ok(()),
    }
}

/// A lease that is released when the guard is dropped.
///
/// Drop cannot wait, so it only tells the connection task to release; the task sends the
/// `release` at once (before any later message of this client, and before its close).
/// Call [`LeaseGuard::release`] to wait for the server's confirmation instead.
#[derive(Debug)]
pub struct LeaseGuard {
    lease: Option<Lease>,
}

impl LeaseGuard {
    /// Releases now and waits for the server's confirmation.
    pub async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }

    /// Disarms the guard: the lease is no longer released on drop.
    pub fn into_lease(mut self) -> Lease {
        self.lease
            .take()
            .expect("a guard holds its lease until dropped")
    }
}

impl Deref for LeaseGuard {
    type Target = Lease;
    fn deref(&self) -> &Lease {
        self.lease
            .as_ref()
            .expect("a guard holds its lease until dropped")
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            // If the task is gone, so is the connection, and the server released the lease.
            let _ = lease.tx.send(Command::Release {
                lease: lease.granted.lease.clone(),
                reply: None,
            });
        }
    }
}

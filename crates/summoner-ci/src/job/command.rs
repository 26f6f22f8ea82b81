//! The foreground command of `summoner up -- CMD` and `summoner lease -- CMD`.
//!
//! It stays in summoner's own process group and inherits the terminal, so it can read
//! from it and a Ctrl-C typed there reaches it directly, as if summoner were not there.

use std::os::unix::process::ExitStatusExt;

use summoner_proc::{ExitStatus, Signal};

/// A running foreground command.
#[derive(Debug)]
pub(crate) struct Foreground {
    child: tokio::process::Child,
    /// Taken at spawn: `Child::id` forgets it once the child has been reaped.
    pid: Option<libc::pid_t>,
}

impl Foreground {
    /// Starts `argv` with the inherited environment plus `env`.
    pub(crate) fn spawn<'a>(
        argv: &[String],
        env: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> std::io::Result<Foreground> {
        let mut command = tokio::process::Command::new(&argv[0]);
        command.args(&argv[1..]).envs(env);
        let child = command.spawn()?;
        let pid = child.id().map(|p| p as libc::pid_t);
        Ok(Foreground { child, pid })
    }

    /// Sends `signal` to the command (not to its group: it shares ours).
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) on a child we spawned and have not reaped: `wait` reaps it,
            // and the caller stops signalling once `wait` has returned.
            unsafe { libc::kill(pid, signal.as_raw()) };
        }
    }

    /// Waits for the command to end.
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        Ok(ExitStatus::from_raw(status.into_raw()))
    }
}

//! The shim: a tiny process between the supervisor and each service that makes sure nothing
//! outlives the supervisor, even when the supervisor is killed with SIGKILL.
//!
//! ```text
//! supervisor ──(std spawn)──▶ shim ──(fork)──▶ service (own process group, then exec)
//!     │ death pipe, write end ──────▶ read end: EOF means "supervisor gone or stopping"
//!     │ status pipe, read end ◀────── write end: service pid, then its raw wait status
//! ```
//!
//! The shim is the child `std::process::Command` forks; inside its `pre_exec` hook it forks
//! again. The grandchild puts itself in a new process group and returns to std, which execs the
//! program. The shim never returns from the hook: it closes every inherited descriptor except
//! its two pipe ends, ignores every catchable signal, becomes a child subreaper (so orphaned
//! helpers of the service are reparented to it and reaped promptly, even where PID 1 never
//! reaps), reports the service's pid, and then sleeps in `poll()` on the death pipe and a
//! `signalfd` for SIGCHLD:
//!
//! * the service's main process exits → reap it, write its wait status, and keep guarding the
//!   group while anything is left in it (exit as soon as it is empty);
//! * the death pipe reaches EOF → `kill(-pgid, SIGKILL)`, reap, `_exit(0)`.
//!
//! After `fork()` in a multi-threaded process only async-signal-safe calls are allowed, so
//! everything below the fork is raw `libc` on integers prepared before spawning: no allocation,
//! no locks, no std I/O.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

/// A spawned service, still guarded by its shim.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The service's main process, which is also its process group id.
    pub(crate) pid: u32,
    /// The shim, the supervisor's direct child: `wait()` on it reaps it.
    pub(crate) shim: Child,
    /// Write end of the death pipe. Dropping it tells the shim to kill the group and exit.
    pub(crate) death: OwnedFd,
    /// Read end of the status pipe; the next 4 bytes are the main process's wait status.
    pub(crate) status: File,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
}

/// Spawns `cmd` behind a shim. `cmd` must be fresh: this adds a `pre_exec` hook and sets its
/// standard streams (stdin null, stdout and stderr piped).
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Spawned> {
    let (death_r, death_w) = cloexec_pipe()?;
    let (status_r, status_w) = cloexec_pipe()?;
    let keep_death = death_r.as_raw_fd();
    let keep_status = status_w.as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the hook runs in the forked child of a possibly multi-threaded process. It only
    // makes async-signal-safe libc calls on the two integers captured here (see `fork_shim`),
    // never allocates, never takes a lock, and in the shim branch never returns.
    unsafe {
        cmd.pre_exec(move || fork_shim(keep_death, keep_status));
    }
    let mut shim = cmd.spawn()?;
    // The shim holds its own copies; ours would keep the pipes open and hide the EOFs each side
    // relies on.
    drop(death_r);
    drop(status_w);
    let mut status = File::from(status_r);
    let mut pid = [0u8; 4];
    if let Err(e) = status.read_exact(&mut pid) {
        // Only a shim killed from outside (SIGKILL, the OOM killer) gets here, before it said
        // which process it forked: nothing to signal, but the shim itself must be reaped.
        drop(death_w);
        let _ = shim.wait();
        return Err(io::Error::other(format!(
            "the supervising shim died before reporting the service's pid ({e})"
        )));
    }
    let stdout = shim.stdout.take().expect("stdout is piped");
    let stderr = shim.stderr.take().expect("stderr is piped");
    Ok(Spawned {
        pid: i32::from_ne_bytes(pid) as u32,
        shim,
        death: death_w,
        status,
        stdout,
        stderr,
    })
}

/// Creates a close-on-exec pipe whose ends are both above the standard descriptors.
///
/// Close-on-exec keeps the ends out of every program exec'd later (the service, other
/// services, probes). Staying above 2 matters when the supervisor runs with a standard stream
/// closed: std `dup2`s the service's stdio onto 0–2 in the child before our hook runs, which
/// would silently replace a pipe end that happened to land there.
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // Without pipe2 another thread may fork between pipe() and fcntl(); the shim closes
        // every descriptor it inherits, so only a concurrently exec'd program could keep one.
        // SAFETY: `fds` is a valid array of two ints for pipe to fill.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: `fd` was just returned by pipe() and is open.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    // SAFETY: pipe2/pipe returned two fresh descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: `fd` is open; F_DUPFD_CLOEXEC returns a new descriptor (>= 3) or -1.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// The `pre_exec` hook: forks the service, and turns the current process into its shim.
///
/// Returns `Ok(())` only in the grandchild, which std then execs. Returns an error only if the
/// fork fails (std reports it to `spawn()`'s caller). The shim branch never returns.
fn fork_shim(death_r: RawFd, status_w: RawFd) -> io::Result<()> {
    // SAFETY: every call below is an async-signal-safe libc call on stack values or on
    // descriptors inherited from the parent; see the module docs for why that is required.
    unsafe {
        // Block every signal across the fork, so that nothing (a terminal's Ctrl-C, a kill
        // aimed at the supervisor's group) can kill the shim before it ignores signals. The
        // grandchild restores the previous mask before exec.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut previous);
        let pid = libc::fork();
        if pid < 0 {
            let error = io::Error::last_os_error();
            libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            return Err(error);
        }
        if pid == 0 {
            // The service: a process group of its own, so that stop reaches its helpers too and
            // a terminal's Ctrl-C does not (the supervisor decides how services stop).
            libc::setpgid(0, 0);
            libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            return Ok(());
        }
        shim_main(pid, death_r, status_w)
    }
}

/// The shim's whole life. Never returns.
///
/// # Safety
///
/// Must only run in the forked child, with `death_r` and `status_w` open.
unsafe fn shim_main(service: libc::pid_t, death_r: RawFd, status_w: RawFd) -> ! {
    // SAFETY: async-signal-safe libc calls only, on stack values and the two descriptors the
    // caller guarantees are open.
    unsafe {
        // Also done by the service itself; doing it from both sides closes the race where the
        // supervisor could signal the group before the service has created it.
        libc::setpgid(service, service);

        // Close everything else: std's exec-error pipe (or `spawn()` would wait for it forever),
        // the service's stdout/stderr (or the supervisor would never see EOF), and other
        // services' pipe ends inherited through this fork (or their death detection would depend
        // on this shim's lifetime).
        close_all_except(death_r, status_w);

        // Ignore every catchable signal: the shim must outlive Ctrl-C and stray kills so that it
        // can always clean up. SIGCHLD keeps its default action (SIG_IGN would make the kernel
        // auto-reap children and break waitpid); it stays blocked and is read from a signalfd.
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        libc::sigemptyset(&mut ignore.sa_mask);
        for signal in 1..65 {
            if signal != libc::SIGCHLD && signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // Numbers the platform reserves fail with EINVAL; nothing to do about those.
                libc::sigaction(signal, &ignore, std::ptr::null_mut());
            }
        }
        let mut sigchld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigchld);
        libc::sigaddset(&mut sigchld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_SETMASK, &sigchld, std::ptr::null_mut());

        // Orphaned helpers of the service are reparented to us rather than to PID 1, which in
        // containers often never reaps: unreaped zombies still count as members of the process
        // group, and stop() waits for the group to be empty.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

        #[cfg(any(target_os = "linux", target_os = "android"))]
        let sigfd = libc::signalfd(-1, &sigchld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let sigfd: RawFd = -1;

        write_i32(status_w, service);

        let mut service_alive = true;
        loop {
            // Reap whatever has exited: the service itself, or orphans handed to us.
            loop {
                let mut status = 0;
                let reaped = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if reaped <= 0 {
                    break;
                }
                if reaped == service {
                    service_alive = false;
                    write_i32(status_w, status);
                }
            }
            if !service_alive && group_is_empty(service) {
                // Nothing left to guard; exiting now also keeps us from ever signalling the
                // group id after the kernel could reuse it.
                libc::_exit(0);
            }

            let mut fds = [
                libc::pollfd {
                    fd: death_r,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sigfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a signalfd, fall back to waking every 10 ms to reap.
            let (count, timeout) = if sigfd >= 0 { (2, -1) } else { (1, 10) };
            let ready = libc::poll(fds.as_mut_ptr(), count, timeout);
            if ready > 0 && fds[0].revents != 0 {
                // The supervisor never writes to the death pipe, so any event on it is EOF: the
                // supervisor closed it (stop, drop) or died. Take the group with us.
                libc::kill(-service, libc::SIGKILL);
                reap_group(service);
                libc::_exit(0);
            }
            if sigfd >= 0 && fds[1].revents != 0 {
                drain(sigfd);
            }
        }
    }
}

/// Writes a native-endian i32 to a pipe; 4 bytes are below PIPE_BUF, so the write is atomic.
///
/// # Safety
///
/// `fd` must be a descriptor (a closed reader just yields EPIPE; SIGPIPE is ignored).
unsafe fn write_i32(fd: RawFd, value: i32) {
    let bytes = value.to_ne_bytes();
    loop {
        // SAFETY: `bytes` is a valid 4-byte buffer.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Whether no process is left in process group `pgid`.
pub(crate) fn group_is_empty(pgid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(-pgid, 0) };
    // EPERM means members exist that we may not signal: not empty.
    result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Reaps every child of ours in process group `pgid`, blocking until they are gone. Called
/// right after SIGKILL, so it waits only for the kernel to finish killing them.
///
/// # Safety
///
/// Only for the shim, after its group has been sent SIGKILL.
unsafe fn reap_group(pgid: libc::pid_t) {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on a process group we own.
        let reaped = unsafe { libc::waitpid(-pgid, &mut status, 0) };
        if reaped < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Empties a non-blocking signalfd.
///
/// # Safety
///
/// `fd` must be a non-blocking descriptor.
unsafe fn drain(fd: RawFd) {
    let mut buf = [0u8; 512];
    // SAFETY: `buf` is a valid buffer of the given length.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Closes every descriptor except `a` and `b`.
///
/// # Safety
///
/// Only for the shim, which owns no descriptor besides these two after this call.
unsafe fn close_all_except(a: RawFd, b: RawFd) {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    // SAFETY: forwarded; the ranges exclude exactly `a` and `b`.
    unsafe {
        if low > 0 {
            close_range(0, low as u32 - 1);
        }
        if high > low + 1 {
            close_range(low as u32 + 1, high as u32 - 1);
        }
        close_range(high as u32 + 1, u32::MAX);
    }
}

/// Closes descriptors `first..=last`: one `close_range` syscall where the kernel has it (Linux
/// 5.9+), else a `close()` loop up to the descriptor limit.
///
/// # Safety
///
/// The caller must not use any descriptor in the range afterwards.
unsafe fn close_range(first: u32, last: u32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: close_range takes plain integers and only closes descriptors.
        let closed = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                last as libc::c_uint,
                0 as libc::c_uint,
            )
        };
        if closed == 0 {
            return;
        }
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        // Some containers set a limit of a billion; looping that far would take minutes.
        limit.rlim_cur.min(1 << 20) as u32
    } else {
        1 << 16
    };
    let mut fd = first;
    while fd <= last && fd < max {
        // SAFETY: closing a descriptor we own or that is not open (EBADF) is harmless here.
        unsafe { libc::close(fd as RawFd) };
        fd += 1;
    }
}

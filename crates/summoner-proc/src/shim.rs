//! The shim: a tiny process between the supervisor and each service that makes sure nothing
//! outlives the supervisor, even when the supervisor is killed with SIGKILL, and even when the
//! service daemonizes (double-forks and calls `setsid()`).
//!
//! ```text
//! supervisor ──(std spawn)──▶ shim ──(fork)──▶ service (own process group, then exec)
//!     │ control socket, one end ────▶ other end: STOP byte, or EOF ("supervisor gone or done")
//!     │ status pipe, read end ◀────── write end: service pid, its exit, then the shim's end
//! ```
//!
//! The shim is the child `std::process::Command` forks; inside its `pre_exec` hook it forks
//! again. The grandchild puts itself in a new process group and returns to std, which execs the
//! program. The shim never returns from the hook: it closes every inherited descriptor except
//! its two pipe ends, ignores every catchable signal, becomes a child subreaper (so every
//! orphaned descendant of the service, daemons included, is reparented to it), reports the
//! service's pid, and then sleeps in `poll()` on the control socket and a `signalfd` for SIGCHLD:
//!
//! * the service's main process exits → reap it and report its status, and whether anything
//!   it started lives on; keep guarding while the shim has children or the group has members,
//!   and exit (reporting its end) as soon as neither is left;
//! * a STOP byte → send the stop signal to every descendant that left the service's process
//!   group (the supervisor signals the group itself), then keep reaping;
//! * EOF after STOP → the supervisor's grace period is over: SIGKILL the group, every
//!   descendant and every process carrying the service's marker, reap, exit;
//! * EOF without STOP → the supervisor died: the stop signal to the group and every
//!   descendant, up to the grace period for them to end, then as above.
//!
//! Descendants are found through `/proc/<pid>/task/<tid>/children` (or, where the kernel lacks
//! that file, by scanning every `/proc/<pid>/stat` for its parent). As a backstop for processes
//! that escaped the subreaper (the shim itself was SIGKILLed), every service process carries
//! `SUMMONER_SERVICE=<random id>` in its environment, and the kill phase also sweeps
//! `/proc/*/environ` for it.
//!
//! After `fork()` in a multi-threaded process only async-signal-safe calls are allowed, so
//! everything below the fork is raw `libc` on integers and fixed-size arrays prepared before
//! spawning: no allocation, no locks, no std I/O.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

/// The control byte that starts a stop: the shim sends the stop signal to every descendant
/// outside the service's process group. EOF on the pipe afterwards means "kill what is left".
pub(crate) const STOP: u8 = b's';

/// The environment variable that marks every process of a service.
pub(crate) const MARKER_VAR: &str = "SUMMONER_SERVICE";
/// `SUMMONER_SERVICE=` and 16 hex digits.
const MARKER_LEN: usize = MARKER_VAR.len() + 1 + 16;

/// `SUMMONER_SERVICE=<random id>`, as a fixed-size array so that the shim can match it without
/// allocating.
#[derive(Clone, Copy)]
pub(crate) struct Marker([u8; MARKER_LEN]);

impl Marker {
    /// A fresh id: 64 bits from std's randomly seeded hasher, mixed with the pid, a counter and
    /// the time, so that two services (of this supervisor or any other) never share one.
    pub(crate) fn new() -> Marker {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        let entry = format!("{MARKER_VAR}={:016x}", hasher.finish());
        let mut bytes = [0u8; MARKER_LEN];
        bytes.copy_from_slice(entry.as_bytes());
        Marker(bytes)
    }

    /// The id, the variable's value.
    pub(crate) fn id(&self) -> &str {
        std::str::from_utf8(&self.0[MARKER_VAR.len() + 1..]).expect("the marker is ASCII")
    }

    /// The whole `NAME=value` entry, as it appears in `/proc/<pid>/environ`.
    fn entry(&self) -> &[u8] {
        &self.0
    }
}

/// What the shim needs to know to stop the service on its own, prepared before the fork.
#[derive(Clone, Copy)]
pub(crate) struct Guard {
    /// The signal a stop begins with.
    pub(crate) stop_signal: libc::c_int,
    /// How long the service gets to obey it, when the shim stops it on its own.
    pub(crate) grace_ms: i64,
    pub(crate) marker: Marker,
}

/// How the service's main process ended, as the shim reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaderExit {
    /// The raw wait status.
    pub(crate) status: i32,
    /// Processes it started were still running when it was reaped: its children, now the
    /// shim's, or members of its process group.
    pub(crate) lingering: bool,
}

/// The shim's last word, written just before it exits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShimEnd {
    /// The raw wait status of the last process it reaped other than the main process (a
    /// daemon's), or the main process's if it reaped no other.
    pub(crate) last_status: i32,
    /// It had to SIGKILL a process that was still running.
    pub(crate) killed: bool,
}

/// Reads the two records the shim writes after the pid, in order: `Ok(None)` for a record
/// that never came (the shim died without writing it).
pub(crate) fn read_leader_exit(status: &mut File) -> Option<LeaderExit> {
    read_record(status).map(|(status, lingering)| LeaderExit {
        status,
        lingering: lingering != 0,
    })
}

/// See [`read_leader_exit`]; the second record.
pub(crate) fn read_end(status: &mut File) -> Option<ShimEnd> {
    read_record(status).map(|(last_status, killed)| ShimEnd {
        last_status,
        killed: killed != 0,
    })
}

fn read_record(status: &mut File) -> Option<(i32, i32)> {
    let mut raw = [0u8; 8];
    status.read_exact(&mut raw).ok()?;
    let (a, b) = raw.split_at(4);
    Some((
        i32::from_ne_bytes(a.try_into().expect("4 bytes")),
        i32::from_ne_bytes(b.try_into().expect("4 bytes")),
    ))
}

/// A spawned service, still guarded by its shim.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The service's main process, which is also its process group id.
    pub(crate) pid: u32,
    /// The shim, the supervisor's direct child: `wait()` on it reaps it.
    pub(crate) shim: Child,
    /// The supervisor's end of the control channel: [`STOP`] starts a stop; closing it tells the shim to
    /// kill whatever is left and exit.
    pub(crate) death: OwnedFd,
    /// Read end of the status pipe: a [`LeaderExit`], then a [`ShimEnd`].
    pub(crate) status: File,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
}

/// Spawns `cmd` behind a shim. `cmd` must be fresh: this adds a `pre_exec` hook, sets its
/// standard streams (stdin null, stdout and stderr piped) and adds the marker variable.
pub(crate) fn spawn(mut cmd: Command, guard: Guard) -> io::Result<Spawned> {
    let (death_r, death_w) = control_pair()?;
    let (status_r, status_w) = cloexec_pipe()?;
    let keep_death = death_r.as_raw_fd();
    let keep_status = status_w.as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env(MARKER_VAR, guard.marker.id());
    // SAFETY: the hook runs in the forked child of a possibly multi-threaded process. It only
    // makes async-signal-safe libc calls on the integers and the fixed-size `guard` captured
    // here (see `fork_shim`), never allocates, never takes a lock, and in the shim branch
    // never returns.
    unsafe {
        cmd.pre_exec(move || fork_shim(keep_death, keep_status, guard));
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

/// The control channel: a close-on-exec Unix socket pair rather than a pipe, so that the
/// supervisor can send STOP with `MSG_NOSIGNAL`. A write to a pipe whose reader is gone raises
/// SIGPIPE, which kills a supervisor that restored its default action (Rust ignores it, but a
/// program embedding this crate may not); the shim sees EOF on it exactly as on a pipe.
fn control_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let kind = libc::SOCK_STREAM;
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    for fd in fds {
        // SAFETY: `fd` was just returned by socketpair() and is open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Sends one control byte to the shim; a shim that is gone needs no telling, and its absence
/// must not raise SIGPIPE.
pub(crate) fn tell(control: &OwnedFd, byte: u8) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // SAFETY: `control` is an open socket we own; the buffer is one valid byte.
    unsafe { libc::send(control.as_raw_fd(), (&raw const byte).cast(), 1, flags) };
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
fn fork_shim(death_r: RawFd, status_w: RawFd, guard: Guard) -> io::Result<()> {
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
        shim_main(pid, death_r, status_w, guard)
    }
}

/// Where the shim is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Guarding a running service.
    Guarding,
    /// The supervisor asked for a stop and runs the grace period itself; EOF ends it.
    Stopping,
    /// The supervisor is gone: the shim runs the grace period itself, until this
    /// `CLOCK_MONOTONIC` instant in milliseconds.
    StoppingAlone { deadline_ms: i64 },
}

/// The shim's whole life. Never returns.
///
/// # Safety
///
/// Must only run in the forked child, with `death_r` and `status_w` open.
unsafe fn shim_main(service: libc::pid_t, death_r: RawFd, status_w: RawFd, guard: Guard) -> ! {
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

        // Every orphaned descendant of the service is reparented to us rather than to PID 1:
        // daemons that double-forked and called setsid() stay ours to find and stop, and
        // zombies get reaped even in containers whose PID 1 never reaps (unreaped zombies
        // still count as members of the process group, and stop() waits for it to be empty).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

        #[cfg(any(target_os = "linux", target_os = "android"))]
        let sigfd = libc::signalfd(-1, &sigchld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let sigfd: RawFd = -1;

        write_i32(status_w, service);

        let mut shim = Shim {
            service,
            guard,
            status_w,
            sigfd,
            leader_alive: true,
            leader_status: 0,
            last_other: None,
            killed: false,
        };
        let mut control = death_r;
        let mut phase = Phase::Guarding;
        loop {
            // Reap whatever has exited: the service itself, or orphans handed to us. Nothing
            // left to guard ends the shim; exiting at once also keeps us from ever signalling
            // the group id after the kernel could reuse it.
            if !shim.reap() {
                shim.exit();
            }

            let mut fds = [
                libc::pollfd {
                    fd: control,
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
            let mut timeout = if sigfd >= 0 { -1 } else { 10 };
            if let Phase::StoppingAlone { deadline_ms } = phase {
                let left = deadline_ms - monotonic_ms();
                if left <= 0 {
                    shim.kill_all();
                }
                let left = left.min(i64::from(libc::c_int::MAX)) as libc::c_int;
                timeout = if timeout < 0 { left } else { timeout.min(left) };
            }
            // A negative descriptor (the control socket after EOF) is skipped by poll().
            let ready = libc::poll(fds.as_mut_ptr(), 2, timeout);
            if ready > 0 && fds[0].revents != 0 {
                let mut byte = 0u8;
                let read = libc::read(control, (&raw mut byte).cast(), 1);
                if read == 1 && byte == STOP && phase == Phase::Guarding {
                    // The supervisor signals the group and times the grace period; the
                    // descendants that left the group are ours to signal.
                    shim.signal_escaped(guard.stop_signal);
                    phase = Phase::Stopping;
                } else if read == 1 {
                    // Nothing else is ever written; ignore it rather than act on noise.
                } else if read < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                    // Try again on the next turn.
                } else if phase == Phase::Stopping {
                    // EOF after STOP: the supervisor's grace period is over.
                    shim.kill_all();
                } else {
                    // EOF without STOP: the supervisor died (or dropped the service without a
                    // stop). Stop everything as it would have, then kill what is left.
                    libc::close(control);
                    control = -1;
                    if shim.leader_alive || !group_is_empty(service) {
                        libc::kill(-service, guard.stop_signal);
                        if guard.stop_signal != libc::SIGKILL {
                            libc::kill(-service, libc::SIGCONT);
                        }
                    }
                    shim.signal_escaped(guard.stop_signal);
                    phase = Phase::StoppingAlone {
                        deadline_ms: monotonic_ms() + guard.grace_ms,
                    };
                }
            }
            if sigfd >= 0 && fds[1].revents != 0 {
                drain(sigfd);
            }
        }
    }
}

/// The shim's state once running; its methods are async-signal-safe.
struct Shim {
    service: libc::pid_t,
    guard: Guard,
    status_w: RawFd,
    sigfd: RawFd,
    leader_alive: bool,
    leader_status: i32,
    /// The raw wait status of the last process reaped other than the main process: a
    /// daemon's, when the service daemonized.
    last_other: Option<i32>,
    /// A SIGKILL hit a process that was still running.
    killed: bool,
}

impl Shim {
    /// Reaps every child that has exited, reporting the main process's exit when it comes.
    /// Returns whether anything is left to guard: a child, or a member of the group.
    fn reap(&mut self) -> bool {
        let mut leader_status = None;
        // Others reaped in the same round as the main process were still there when it
        // exited: they count as left behind, even if they are gone by now.
        let mut others = false;
        let children = loop {
            let mut status = 0;
            // SAFETY: waitpid on our own children with a valid status pointer.
            let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if reaped > 0 {
                if reaped == self.service {
                    self.leader_alive = false;
                    self.leader_status = status;
                    leader_status = Some(status);
                } else {
                    self.last_other = Some(status);
                    others = true;
                }
                continue;
            }
            // 0: children left, none exited. -1: ECHILD (none left), or EINTR (assume some).
            break reaped == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD);
        };
        let lingering = children || !group_is_empty(self.service);
        if let Some(status) = leader_status {
            let lingering = lingering || others;
            // SAFETY: `status_w` stays open for the shim's whole life.
            unsafe {
                write_i32_pair(self.status_w, status, i32::from(lingering));
            }
        }
        self.leader_alive || lingering
    }

    /// Reports the end and exits.
    fn exit(&self) -> ! {
        // SAFETY: `status_w` stays open; _exit ends the process without running anything.
        unsafe {
            let last = self.last_other.unwrap_or(self.leader_status);
            write_i32_pair(self.status_w, last, i32::from(self.killed));
            libc::_exit(0)
        }
    }

    /// Sends `signal` (and SIGCONT, so that a suspended process can act on it) to every
    /// descendant outside the service's process group: the group gets its signal as a whole,
    /// and a second one could read as "hurry up" to programs that count them.
    fn signal_escaped(&self, signal: libc::c_int) {
        let pgid = self.service;
        descendants(|pid| {
            // SAFETY: getpgid and kill take plain integers.
            unsafe {
                if libc::getpgid(pid) != pgid {
                    libc::kill(pid, signal);
                    if signal != libc::SIGKILL {
                        libc::kill(pid, libc::SIGCONT);
                    }
                }
            }
        });
    }

    /// SIGKILLs the group, every descendant and every marked process, again for orphans that
    /// appear meanwhile, until nothing is left; then exits.
    fn kill_all(&mut self) -> ! {
        let mut killed = false;
        loop {
            if !self.reap() {
                self.killed |= killed;
                self.exit();
            }
            // SAFETY: kill takes plain integers; the group is signalled only while its id
            // cannot have been reused (its leader unreaped, or members left).
            unsafe {
                if self.leader_alive || !group_is_empty(self.service) {
                    libc::kill(-self.service, libc::SIGKILL);
                }
            }
            descendants(|pid| {
                // SAFETY: as above; `pid` is our descendant, so its pid is held.
                killed |= unsafe { libc::kill(pid, libc::SIGKILL) } == 0;
            });
            sweep(&self.guard.marker, |pid| {
                // SAFETY: as above.
                killed |= unsafe { libc::kill(pid, libc::SIGKILL) } == 0;
            });
            // Wait for the next child to die (or 10 ms, for orphans reparented to us that
            // will not die without the next round's SIGKILL).
            let mut fds = [libc::pollfd {
                fd: self.sigfd,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: a valid pollfd array of length 1; drain takes a non-blocking signalfd.
            unsafe {
                if libc::poll(fds.as_mut_ptr(), 1, 10) > 0 {
                    drain(self.sigfd);
                }
            }
        }
    }
}

/// The current `CLOCK_MONOTONIC` time in milliseconds.
fn monotonic_ms() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // The casts are no-ops on 64-bit Linux, not on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let ms = now.tv_sec as i64 * 1000 + now.tv_nsec as i64 / 1_000_000;
    ms
}

/// Writes two native-endian i32s in one write: 8 bytes are below PIPE_BUF, so it is atomic.
///
/// # Safety
///
/// `fd` must be a descriptor (a closed reader just yields EPIPE; SIGPIPE is ignored).
unsafe fn write_i32_pair(fd: RawFd, a: i32, b: i32) {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&a.to_ne_bytes());
    bytes[4..].copy_from_slice(&b.to_ne_bytes());
    loop {
        // SAFETY: `bytes` is a valid 8-byte buffer.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
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

/// The most processes one walk of the shim's descendants handles; more are found by the next
/// round of `kill_all`, as the first ones die.
const MAX_DESCENDANTS: usize = 1024;

/// Calls `f` with every descendant of the calling process (the shim), parents before their
/// children. The tree is read completely first, so that signalling a process cannot hide its
/// children (they would be reparented to the shim and found by the next walk).
///
/// Uses `/proc/<pid>/task/<tid>/children` (Linux 3.5+ with `CONFIG_PROC_CHILDREN`, which
/// common kernels enable); without it, scans every `/proc/<pid>/stat` for its parent. Only
/// async-signal-safe calls, no allocation.
pub(crate) fn descendants(mut f: impl FnMut(libc::pid_t)) {
    let mut found = PidSet::new();
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if children_of(me, |child| found.push(child)) {
        let mut next = 0;
        while next < found.len {
            let parent = found.pids[next];
            next += 1;
            children_of(parent, |child| found.push(child));
        }
    } else {
        // No children files: grow the set from ourselves, one scan of /proc at a time, until a
        // scan adds nothing (a scan may meet a child before its parent joined the set).
        loop {
            let before = found.len;
            each_number(ProcPath::new().push(b"/proc").as_ptr(), |pid| {
                if pid == me || found.contains(pid) {
                    return;
                }
                if let Some(parent) = parent_of(pid)
                    && (parent == me || found.contains(parent))
                {
                    found.push(pid);
                }
            });
            if found.len == before || found.len == MAX_DESCENDANTS {
                break;
            }
        }
    }
    for &pid in &found.pids[..found.len] {
        f(pid);
    }
}

/// A fixed-capacity set of pids, on the stack.
struct PidSet {
    pids: [libc::pid_t; MAX_DESCENDANTS],
    len: usize,
}

impl PidSet {
    fn new() -> PidSet {
        PidSet {
            pids: [0; MAX_DESCENDANTS],
            len: 0,
        }
    }

    /// Adds `pid` unless the set is full or has it already (a process seen twice while it
    /// was being reparented).
    fn push(&mut self, pid: libc::pid_t) {
        if pid > 0 && self.len < MAX_DESCENDANTS && !self.contains(pid) {
            self.pids[self.len] = pid;
            self.len += 1;
        }
    }

    fn contains(&self, pid: libc::pid_t) -> bool {
        self.pids[..self.len].contains(&pid)
    }
}

/// Calls `f` with every process (other than the caller) whose environment holds `marker`'s
/// entry exactly. Processes whose environment we may not read are skipped.
pub(crate) fn sweep(marker: &Marker, mut f: impl FnMut(libc::pid_t)) {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    each_number(ProcPath::new().push(b"/proc").as_ptr(), |pid| {
        if pid != me && environ_has(pid, marker.entry()) {
            f(pid);
        }
    });
}

/// Calls `f` with the children of every thread of `pid`. Returns false if no children file
/// could be read (the process is gone, or the kernel has no such files).
fn children_of(pid: libc::pid_t, mut f: impl FnMut(libc::pid_t)) -> bool {
    let mut any = false;
    let mut tasks = ProcPath::new();
    tasks.push(b"/proc/").num(pid).push(b"/task");
    each_number(tasks.as_ptr(), |tid| {
        let mut path = ProcPath::new();
        path.push(b"/proc/")
            .num(pid)
            .push(b"/task/")
            .num(tid)
            .push(b"/children");
        any |= read_numbers(path.as_ptr(), &mut f);
    });
    any
}

/// The parent of `pid`, from `/proc/<pid>/stat` (`pid (comm) S ppid …`; the name may hold
/// spaces and parentheses, so the fields after it are found from the last `)`).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let mut path = ProcPath::new();
    path.push(b"/proc/").num(pid).push(b"/stat");
    let mut buf = [0u8; 512];
    let len = read_start(path.as_ptr(), &mut buf)?;
    let text = &buf[..len];
    let close = text.iter().rposition(|&b| b == b')')?;
    // ") S 123 ..."
    let fields = text.get(close + 4..)?;
    let mut ppid: libc::pid_t = 0;
    for &b in fields {
        if !b.is_ascii_digit() {
            break;
        }
        ppid = ppid
            .checked_mul(10)?
            .checked_add(libc::pid_t::from(b - b'0'))?;
    }
    Some(ppid)
}

/// Whether the NUL-separated environment in `/proc/<pid>/environ` has an entry equal to
/// `entry`, read in chunks and matched as it streams by.
fn environ_has(pid: libc::pid_t, entry: &[u8]) -> bool {
    let mut path = ProcPath::new();
    path.push(b"/proc/").num(pid).push(b"/environ");
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // How much of the current entry matched `entry`, or None once it cannot match.
    let mut matched = Some(0usize);
    let mut buf = [0u8; 4096];
    let found = 'read: loop {
        // SAFETY: `buf` is a valid buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            // The last entry may lack its NUL.
            break matched == Some(entry.len());
        }
        for &b in &buf[..n as usize] {
            if b == 0 {
                if matched == Some(entry.len()) {
                    break 'read true;
                }
                matched = Some(0);
            } else {
                matched = match matched {
                    Some(at) if entry.get(at) == Some(&b) => Some(at + 1),
                    _ => None,
                };
            }
        }
    };
    // SAFETY: `fd` was opened above.
    unsafe { libc::close(fd) };
    found
}

/// Calls `f` with every entry of the directory at `path` whose name is a number (pids in
/// `/proc`, thread ids in `/proc/<pid>/task`). Returns false if the directory cannot be opened.
fn each_number(path: *const libc::c_char, mut f: impl FnMut(libc::pid_t)) -> bool {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // u64s, so that the kernel's 8-byte-aligned records are aligned here too.
    let mut buf = [0u64; 512];
    loop {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: getdents64 fills at most the given number of bytes of `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd,
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let n: libc::c_long = -1;
        if n <= 0 {
            break;
        }
        // SAFETY: the kernel wrote `n` bytes of records into `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let mut at = 0usize;
        while at + 19 <= bytes.len() {
            let reclen = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &bytes[at + 19..(at + reclen).min(bytes.len())];
            let mut number: libc::pid_t = 0;
            let mut digits = 0;
            for &b in name {
                if b == 0 {
                    break;
                }
                if !b.is_ascii_digit() || digits == 9 {
                    digits = 0;
                    break;
                }
                number = number * 10 + libc::pid_t::from(b - b'0');
                digits += 1;
            }
            if digits > 0 {
                f(number);
            }
            at += reclen;
        }
    }
    // SAFETY: `fd` was opened above.
    unsafe { libc::close(fd) };
    true
}

/// Calls `f` with every whitespace-separated number in the file at `path`, read in chunks.
/// Returns false if the file cannot be opened.
fn read_numbers(path: *const libc::c_char, f: &mut impl FnMut(libc::pid_t)) -> bool {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let mut number: libc::pid_t = 0;
    let mut digits = 0;
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: `buf` is a valid buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            break;
        }
        for &b in &buf[..n as usize] {
            if b.is_ascii_digit() && digits < 9 {
                number = number * 10 + libc::pid_t::from(b - b'0');
                digits += 1;
            } else {
                if digits > 0 {
                    f(number);
                }
                number = 0;
                digits = 0;
            }
        }
    }
    if digits > 0 {
        f(number);
    }
    // SAFETY: `fd` was opened above.
    unsafe { libc::close(fd) };
    true
}

/// Reads the start of the file at `path` into `buf`; returns how many bytes.
fn read_start(path: *const libc::c_char, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `buf` is a valid buffer of its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: `fd` was opened above.
    unsafe { libc::close(fd) };
    usize::try_from(n).ok()
}

/// A path under `/proc`, built on the stack: the longest is
/// `/proc/<pid>/task/<tid>/children`, well under 64 bytes.
struct ProcPath {
    buf: [u8; 64],
    len: usize,
}

impl ProcPath {
    fn new() -> ProcPath {
        ProcPath {
            buf: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> &mut ProcPath {
        // One byte stays free for the terminating NUL.
        let room = self.buf.len() - 1 - self.len;
        let take = bytes.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self
    }

    fn num(&mut self, n: libc::pid_t) -> &mut ProcPath {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut n = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..])
    }

    /// The path, NUL-terminated.
    fn as_ptr(&mut self) -> *const libc::c_char {
        self.buf[self.len] = 0;
        self.buf.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_without_allocating() {
        let mut path = ProcPath::new();
        path.push(b"/proc/").num(1234).push(b"/task/").num(0);
        let text = unsafe { std::ffi::CStr::from_ptr(path.as_ptr()) };
        assert_eq!(text.to_str().unwrap(), "/proc/1234/task/0");
    }

    #[test]
    fn markers_are_unique_and_well_formed() {
        let (a, b) = (Marker::new(), Marker::new());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        assert!(a.entry().starts_with(b"SUMMONER_SERVICE="));
    }

    #[test]
    fn the_environment_of_a_child_is_matched_by_whole_entries() {
        /// Kills and reaps the child even when an assertion fails first.
        struct Reap(std::process::Child);
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let marker = Marker::new();
        let child = Reap(
            Command::new("sleep")
                .arg("1000")
                .env("OTHER", "x")
                .env(MARKER_VAR, marker.id())
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id() as libc::pid_t;
        // std's spawn returns once the child has begun exec, a moment before the kernel has
        // set up the new environment: wait (bounded) for it to appear.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(format!("/proc/{pid}/environ")).map_or(true, |e| e.is_empty()) {
            assert!(std::time::Instant::now() < deadline, "no environment");
            std::thread::yield_now();
        }
        assert!(environ_has(pid, marker.entry()));
        assert!(
            !environ_has(pid, &marker.entry()[..MARKER_LEN - 1]),
            "a prefix is not a match"
        );
        let mut found = Vec::new();
        sweep(&marker, |p| found.push(p));
        assert_eq!(found, [pid]);
        assert_eq!(parent_of(pid), Some(std::process::id() as libc::pid_t));
        let mut ours = Vec::new();
        descendants(|p| ours.push(p));
        assert!(ours.contains(&pid), "{ours:?}");
    }
}

//! A running service's output and exit, as the supervisor sees them.
//!
//! Two reader threads (stdout, stderr) and one status thread feed a [`Monitor`]: it keeps the
//! last lines of output, the main process's exit status, and, only while `start()` is waiting,
//! a channel into the readiness loop. Observers hear every line as it arrives.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::signal::ExitStatus;

/// The longest line kept whole. A process that prints megabytes without a newline gets its
/// line cut here rather than buffered without bound.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How long an unrequested exit waits for the output readers to reach end of file before
/// the observers are told.
const EXIT_DRAIN_WAIT: Duration = Duration::from_millis(100);

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// Hears what services do: their output lines, the moment each becomes ready, and exits nobody
/// asked for. Every method has an empty default, so implement only what you need.
///
/// Methods are called from the supervisor's own threads (one per output stream, one per
/// process exit), so they should return quickly and must not call back into the executor.
pub trait Observer: Send + Sync {
    /// One line of output, without its line ending. Lines longer than 64 KiB are cut.
    fn line(&self, service: &str, stream: Stream, line: &str) {
        let _ = (service, stream, line);
    }

    /// The service became ready, `took` after it was spawned.
    fn ready(&self, service: &str, took: Duration) {
        let _ = (service, took);
    }

    /// The service ended by itself (not because `stop()` asked it to): its main process
    /// exited, or, for a service that daemonized (its main process exited with an accepted code
    /// while processes it started lived on), the last of those ended; `status` is then that
    /// process's.
    fn exited(&self, service: &str, status: ExitStatus) {
        let _ = (service, status);
    }
}

/// What the readiness loop in `start()` listens to: output lines and the process's exit, on one
/// channel, so that it wakes on whichever comes first.
#[derive(Debug)]
pub(crate) enum Event {
    Line(String),
    /// The main process exited. `detached` when it exited with an accepted code while
    /// processes it started live on: the service daemonized and is not over.
    Exited {
        status: ExitStatus,
        detached: bool,
    },
    /// Nothing of the service is left; the status is the last process's. Comes after `Exited`.
    Ended(ExitStatus),
}

/// Splits a byte stream into lines, cutting any line at `max` bytes.
///
/// Once a line reaches `max` bytes it is emitted at once (the process may never print the
/// newline) and the rest of it, up to the next newline, is dropped.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    skipping: bool,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> LineSplitter {
        LineSplitter {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Feeds a chunk, calling `emit` for each complete line in it.
    pub(crate) fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let line = &data[..end];
                    data = &data[end + 1..];
                    if self.skipping {
                        self.skipping = false;
                    } else if self.buf.is_empty() {
                        emit(&line[..line.len().min(self.max)]);
                    } else {
                        let room = self.max - self.buf.len();
                        self.buf.extend_from_slice(&line[..line.len().min(room)]);
                        emit(&self.buf);
                        self.buf.clear();
                    }
                }
                None => {
                    if !self.skipping {
                        let room = self.max - self.buf.len();
                        self.buf.extend_from_slice(&data[..data.len().min(room)]);
                        if self.buf.len() == self.max {
                            emit(&self.buf);
                            self.buf.clear();
                            self.skipping = true;
                        }
                    }
                    data = &[];
                }
            }
        }
    }

    /// Emits the last line if the stream ended without a newline.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// Shared between the executor and its threads.
pub(crate) struct Monitor {
    name: String,
    /// Hear lines and unrequested exits: the executor's own observer and its orchestrator's.
    observers: Vec<Arc<dyn Observer>>,
    /// The exit codes that count as success: a main process that exits with one while
    /// processes it started live on has daemonized.
    accepted: Vec<i32>,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    tail: VecDeque<String>,
    tail_lines: usize,
    /// Present only while `start()` waits for readiness; afterwards lines must not pile up in
    /// a channel nobody reads.
    start_tx: Option<Sender<Event>>,
    exit: Option<ExitStatus>,
    /// The main process exited with an accepted code, leaving processes behind.
    detached: bool,
    /// Set once nothing of the service is left (the shim's last word): the last process's
    /// status, and whether anything had to be SIGKILLed.
    end: Option<(ExitStatus, bool)>,
    open_streams: usize,
    /// Set by `stop()`, so that an exit it caused is not reported as an exit "by itself".
    stopping: bool,
}

impl Monitor {
    pub(crate) fn new(
        name: String,
        observers: Vec<Arc<dyn Observer>>,
        accepted: Vec<i32>,
        tail_lines: usize,
        start_tx: Sender<Event>,
    ) -> Monitor {
        Monitor {
            name,
            observers,
            accepted,
            state: Mutex::new(State {
                tail: VecDeque::with_capacity(tail_lines.min(1024)),
                tail_lines,
                start_tx: Some(start_tx),
                exit: None,
                detached: false,
                end: None,
                open_streams: 2,
                stopping: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking observer must not make the supervisor unable to stop its processes.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn line(&self, stream: Stream, bytes: &[u8]) {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        for observer in &self.observers {
            // A panicking observer must not stop this thread: the pipe would fill up and block
            // the service. The panic hook has already reported it.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                observer.line(&self.name, stream, &text);
            }));
        }
        let mut state = self.lock();
        if let Some(tx) = &state.start_tx {
            let _ = tx.send(Event::Line(text.clone()));
        }
        if state.tail_lines > 0 {
            if state.tail.len() == state.tail_lines {
                state.tail.pop_front();
            }
            state.tail.push_back(text);
        }
    }

    fn stream_closed(&self) {
        let mut state = self.lock();
        state.open_streams -= 1;
        self.changed.notify_all();
    }

    /// Records the main process's exit, wakes whoever waits for it, and tells the observer if
    /// nobody asked for it, unless the service daemonized: `lingering` says processes it
    /// started were still running, and with an accepted exit code that means the service lives
    /// on in them (its end is reported by [`ended`](Monitor::ended)).
    pub(crate) fn exited(&self, status: ExitStatus, lingering: bool) {
        let mut state = self.lock();
        if state.exit.is_some() {
            return;
        }
        let detached =
            lingering && matches!(status, ExitStatus::Code(code) if self.accepted.contains(&code));
        state.exit = Some(status);
        state.detached = detached;
        if let Some(tx) = &state.start_tx {
            let _ = tx.send(Event::Exited { status, detached });
        }
        let by_itself = !state.stopping && !detached;
        self.changed.notify_all();
        drop(state);
        if by_itself {
            // The last lines a dying process printed are usually why it died; let the
            // readers catch up with them before the observers hear of the exit and read
            // the tail. Bounded, since a child the process left behind may hold the pipes.
            self.wait_streams_closed(Instant::now() + EXIT_DRAIN_WAIT);
            for observer in &self.observers {
                observer.exited(&self.name, status);
            }
        }
    }

    /// Records that nothing of the service is left: `last` is the status of the last process
    /// reaped, `killed` whether one had to be SIGKILLed. For a daemonized service that nobody
    /// asked to stop, this is its unrequested exit.
    pub(crate) fn ended(&self, last: ExitStatus, killed: bool) {
        let mut state = self.lock();
        if state.end.is_some() {
            return;
        }
        state.end = Some((last, killed));
        if let Some(tx) = &state.start_tx {
            let _ = tx.send(Event::Ended(last));
        }
        let report = state.detached && !state.stopping;
        self.changed.notify_all();
        drop(state);
        if report {
            for observer in &self.observers {
                observer.exited(&self.name, last);
            }
        }
    }

    /// Whether nothing of the service is left, and if so whether anything had to be
    /// SIGKILLed.
    pub(crate) fn end(&self) -> Option<(ExitStatus, bool)> {
        self.lock().end
    }

    /// Waits until nothing of the service is left, or `deadline` passes. Returns whether it
    /// ended.
    pub(crate) fn wait_end(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while state.end.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Ends the start phase: later lines go to the tail and the observer only.
    pub(crate) fn close_start_channel(&self) {
        self.lock().start_tx = None;
    }

    /// Marks the start of `stop()` and says whether the process had already exited.
    pub(crate) fn begin_stop(&self) -> Option<ExitStatus> {
        let mut state = self.lock();
        state.stopping = true;
        state.exit
    }

    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        self.lock().exit
    }

    /// Waits for the main process's exit until `deadline` (forever if `None`).
    pub(crate) fn wait_exit(&self, deadline: Option<Instant>) -> Option<ExitStatus> {
        let mut state = self.lock();
        loop {
            if state.exit.is_some() {
                return state.exit;
            }
            match deadline {
                None => {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    state = self
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
            }
        }
    }

    /// Waits until both output streams reached end of file, or `deadline` passes. Returns
    /// whether they did.
    pub(crate) fn wait_streams_closed(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while state.open_streams > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    pub(crate) fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }
}

/// Starts the thread that drains one output pipe for the process's whole life.
///
/// Draining always, not only while someone listens, is what keeps a chatty service from
/// blocking on a full pipe (mirakuru hung exactly there).
pub(crate) fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    monitor: Arc<Monitor>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("{}:{stream}", monitor.name))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut splitter = LineSplitter::new(MAX_LINE);
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => splitter.push(&buf[..n], |line| monitor.line(stream, line)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            splitter.finish(|line| monitor.line(stream, line));
            monitor.stream_closed();
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, |l| {
                lines.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        splitter.finish(|l| lines.push(String::from_utf8_lossy(l).into_owned()));
        lines
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            split(&[b"ab", b"c\nde", b"\n\nf"], 100),
            ["abc", "de", "", "f"]
        );
        assert_eq!(split(&[b"one\ntwo\n"], 100), ["one", "two"]);
        assert!(split(&[b""], 100).is_empty());
    }

    #[test]
    fn cuts_long_lines_in_one_chunk() {
        assert_eq!(split(&[b"abcdefgh\nxy\n"], 4), ["abcd", "xy"]);
    }

    #[test]
    fn cuts_long_lines_across_chunks_without_waiting_for_the_newline() {
        let mut splitter = LineSplitter::new(4);
        let mut lines = Vec::new();
        splitter.push(b"abc", |l| lines.push(l.to_vec()));
        assert!(lines.is_empty());
        splitter.push(b"defg", |l| lines.push(l.to_vec()));
        assert_eq!(lines, [b"abcd".to_vec()], "emitted as soon as it is full");
        splitter.push(b"hij", |l| lines.push(l.to_vec()));
        splitter.push(b"k\nok\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines, [b"abcd".to_vec(), b"ok".to_vec()]);
    }

    #[test]
    fn a_line_of_exactly_max_bytes_is_emitted_once() {
        assert_eq!(split(&[b"abcd", b"\nef\n"], 4), ["abcd", "ef"]);
        assert_eq!(split(&[b"ab", b"cd\n"], 4), ["abcd"]);
    }

    #[test]
    fn a_partial_line_joined_with_a_long_rest_is_cut() {
        assert_eq!(split(&[b"ab", b"cdefgh\nz"], 4), ["abcd", "z"]);
    }
}

//! The process engine's observer for a job's services: turns its callbacks into job events,
//! keeps each service's last lines, and tells the job's loop when a service dies.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use summoner_proc::{ExitStatus, Observer, Stream};
use tokio::sync::mpsc;

use super::event::{JobEvent, JobObserver};

/// How many lines of a dead service's output are kept to say why it died.
pub(crate) const TAIL_LINES: usize = 20;

/// A service that ended by itself after it was ready.
#[derive(Debug)]
pub(crate) struct Died {
    pub(crate) service: String,
    pub(crate) status: ExitStatus,
    pub(crate) tail: Vec<String>,
}

/// Shared by every executor of one job.
pub(crate) struct ServiceWatch {
    observer: Arc<dyn JobObserver>,
    tails: Mutex<HashMap<String, VecDeque<String>>>,
    died: mpsc::UnboundedSender<Died>,
}

impl ServiceWatch {
    pub(crate) fn new(
        observer: Arc<dyn JobObserver>,
    ) -> (Arc<ServiceWatch>, mpsc::UnboundedReceiver<Died>) {
        let (died, rx) = mpsc::unbounded_channel();
        let watch = ServiceWatch {
            observer,
            tails: Mutex::new(HashMap::new()),
            died,
        };
        (Arc::new(watch), rx)
    }
}

impl std::fmt::Debug for ServiceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceWatch").finish_non_exhaustive()
    }
}

impl Observer for ServiceWatch {
    fn line(&self, service: &str, stream: Stream, line: &str) {
        if let Ok(mut tails) = self.tails.lock() {
            let tail = tails.entry(service.to_owned()).or_default();
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        }
        self.observer.event(JobEvent::ServiceOutput {
            service: service.to_owned(),
            stream,
            line: line.to_owned(),
        });
    }

    fn ready(&self, service: &str, took: Duration) {
        self.observer.event(JobEvent::ServiceReady {
            service: service.to_owned(),
            took,
        });
    }

    fn exited(&self, service: &str, status: ExitStatus) {
        let tail = self
            .tails
            .lock()
            .ok()
            .and_then(|tails| tails.get(service).map(|t| t.iter().cloned().collect()))
            .unwrap_or_default();
        // The receiver is gone only once the job has finished with its services.
        let _ = self.died.send(Died {
            service: service.to_owned(),
            status,
            tail,
        });
    }
}

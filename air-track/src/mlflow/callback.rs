//! [`MlflowCallback`]: each trial an MLflow run, its config the run's params, its results
//! metrics at their `training_iteration`, its checkpoints tags or artifacts, its end the
//! run's status.

use std::{
    sync::{
        Arc, Mutex,
        atomic::Ordering,
        mpsc::{self, Sender},
    },
    time::Duration,
};

use air_train::{BoxError, Callback, Metrics, TrialContext};

use crate::TrackError;

use super::{
    client::{Client, RunStatus},
    config::Settings,
    worker::{Counters, Event, TrialKey, Worker},
};

/// Logs every trial to an MLflow tracking server (Ray's `MLflowLoggerCallback`).
///
/// Built from an [`MlflowConfig`](super::MlflowConfig). For each trial, in the experiment the
/// config names (created when missing):
/// - a run named after the trial, tagged `air.trial_id`, `air.trial_name`, `air.trial_path`,
///   `air.experiment_path` and the config's tags;
/// - the trial's config, flattened to dotted names, as params;
/// - every numeric result (booleans as 0/1, nested values as `a/b`) as metrics at step
///   `training_iteration`, at the result's timestamp;
/// - each checkpoint's location as the `air.checkpoint` tag, and its files as artifacts under
///   `checkpoints/<name>/` with [`Artifacts::Checkpoints`](super::Artifacts::Checkpoints);
/// - the end as status `FINISHED`, or `FAILED` with the error in the `air.error` tag.
///
/// A trial that resumes (a retry, or `Tuner::restore` in another process) continues its run,
/// found by its tags. Events are queued and sent by a thread of the callback's own, results
/// that queue up meanwhile in one request per run, so a slow server never slows a trial.
///
/// A server that is down or refuses an event costs a warning, never the run: the results stay
/// in each trial's directory (`result.json`), and after 3 requests in a row that reach no server
/// the callback stops trying. At the experiment's end the callback waits (up to
/// `flush_timeout_s`) for the queue to drain; [`delivery`](Self::delivery) says how many events
/// arrived.
#[derive(Debug)]
pub struct MlflowCallback {
    queue: Mutex<Sender<Event>>,
    counters: Arc<Counters>,
    flush_timeout: Duration,
}

/// How many of the callback's events reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Delivery {
    /// Events the server took.
    pub sent: u64,
    /// Events that did not reach it (a warning was logged for each failed request).
    pub failed: u64,
    /// Events still waiting in the queue.
    pub queued: u64,
}

impl MlflowCallback {
    /// Starts the sender thread, which makes its HTTP client with `make_client` first.
    pub(crate) fn start(
        settings: Settings,
        make_client: impl FnOnce() -> Result<Client, TrackError> + Send + 'static,
    ) -> Result<Self, TrackError> {
        let (queue, events) = mpsc::channel();
        let (ready, started) = mpsc::sync_channel(1);
        let counters = Arc::new(Counters::default());
        let flush_timeout = settings.flush_timeout;
        let worker_counters = Arc::clone(&counters);
        // Detached: it ends when the callback (the queue's one sender) is dropped and the
        // queue is empty; `on_experiment_end` is where a run waits for it.
        std::thread::Builder::new()
            .name("air-mlflow".into())
            .spawn(move || match make_client() {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    Worker::new(settings, client, worker_counters).run(events);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|source| TrackError::Thread { source })?;
        started.recv().map_err(|_| TrackError::Thread {
            source: std::io::Error::other("it ended before making its HTTP client"),
        })??;
        Ok(Self {
            queue: Mutex::new(queue),
            counters,
            flush_timeout,
        })
    }

    /// Events sent, failed and queued so far.
    pub fn delivery(&self) -> Delivery {
        let queued = self.counters.queued.load(Ordering::Relaxed);
        let sent = self.counters.sent.load(Ordering::Relaxed);
        let failed = self.counters.failed.load(Ordering::Relaxed);
        Delivery {
            sent,
            failed,
            queued: queued.saturating_sub(sent + failed),
        }
    }

    fn push(&self, event: Event) -> Result<(), BoxError> {
        let counted = !matches!(event, Event::Flush(_));
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue
            .send(event)
            .map_err(|_| "the MLflow sender thread has stopped")?;
        if counted {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn key(trial: &TrialContext) -> TrialKey {
    TrialKey {
        experiment_path: trial.experiment_path.clone(),
        id: trial.id.clone(),
    }
}

impl Callback for MlflowCallback {
    fn name(&self) -> &str {
        "MlflowCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        self.push(Event::Start {
            key: key(trial),
            name: trial.name.clone(),
            path: trial.path.clone(),
            config: trial.config.clone(),
            history: history.to_vec(),
        })
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        self.push(Event::Result {
            key: key(trial),
            result: result.clone(),
        })
    }

    fn on_checkpoint(
        &self,
        trial: &TrialContext,
        name: &str,
        location: &str,
        _: &Metrics,
    ) -> Result<(), BoxError> {
        self.push(Event::Checkpoint {
            key: key(trial),
            name: name.to_owned(),
            location: location.to_owned(),
        })
    }

    fn on_trial_complete(&self, trial: &TrialContext, _: Option<&Metrics>) -> Result<(), BoxError> {
        self.push(Event::End {
            key: key(trial),
            status: RunStatus::Finished,
            error: None,
        })
    }

    fn on_trial_error(&self, trial: &TrialContext, error: &str) -> Result<(), BoxError> {
        self.push(Event::End {
            key: key(trial),
            status: RunStatus::Failed,
            error: Some(error.to_owned()),
        })
    }

    /// Waits (up to the flush timeout) until every event queued so far has been handled.
    fn on_experiment_end(&self, _: &str) -> Result<(), BoxError> {
        let (done, flushed) = mpsc::channel();
        self.push(Event::Flush(done))?;
        if flushed.recv_timeout(self.flush_timeout).is_err() {
            let left = self.delivery().queued;
            return Err(format!(
                "{left} MLflow events were not sent within {:?}; they go on in the background \
                 while the process lives (raise flush_timeout_s to wait longer)",
                self.flush_timeout
            )
            .into());
        }
        let d = self.delivery();
        if d.failed > 0 {
            tracing::warn!(
                sent = d.sent,
                failed = d.failed,
                "some events did not reach MLflow; the trial directories hold every result"
            );
        }
        Ok(())
    }
}

//! The threads trials run on, kept between trials: a sweep of thousands of short trials does
//! not pay a thread's creation and teardown (its stack mapped and unmapped, the other cores'
//! TLBs flushed, a fresh malloc arena) per trial.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc,
};

/// A trial's work, run to its end on one thread.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Runs each job at once: on a thread that is waiting for work, else on a new one. Never
/// queues a job behind another (a trial that has started must not wait for one to end).
/// Threads end when this is dropped and they finish their job.
pub(super) struct TrialThreads {
    jobs: mpsc::Sender<Job>,
    waiting: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// Threads waiting for a job, less the jobs sent to them not yet taken.
    idle: Arc<AtomicUsize>,
}

impl TrialThreads {
    pub(super) fn new() -> Self {
        let (jobs, waiting) = mpsc::channel();
        Self {
            jobs,
            waiting: Arc::new(Mutex::new(waiting)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts `job`; an error when no thread could be started for it.
    pub(super) fn run(&self, job: Job) -> std::io::Result<()> {
        let reserved = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if reserved {
            // A waiting thread takes it; the receiver lives as long as `self`.
            return self.jobs.send(job).map_err(|_| {
                std::io::Error::other("the trial threads' queue closed while the tuner runs")
            });
        }
        let (waiting, idle) = (self.waiting.clone(), self.idle.clone());
        std::thread::Builder::new()
            .name("air-tune-trial".to_owned())
            .spawn(move || {
                job();
                loop {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let next = waiting.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jobs_never_wait_for_each_other_and_threads_are_reused() {
        let threads = TrialThreads::new();
        let names = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        for round in 0..20 {
            // Three jobs that each wait for the main thread's release, which comes only once
            // all three have started: each needs its own thread.
            let (started_tx, started) = mpsc::channel();
            let (release_tx, release) = mpsc::channel::<()>();
            let release = Arc::new(Mutex::new(release));
            for _ in 0..3 {
                let (started_tx, release, names) =
                    (started_tx.clone(), release.clone(), names.clone());
                threads
                    .run(Box::new(move || {
                        let me = format!("{:?}", std::thread::current().id());
                        names.lock().unwrap().insert(me);
                        started_tx.send(()).unwrap();
                        release.lock().unwrap().recv().unwrap();
                    }))
                    .unwrap();
            }
            for _ in 0..3 {
                // A generous bound: only a job queued behind another would miss it.
                started
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|e| panic!("round {round}: a job did not start: {e}"));
            }
            for _ in 0..3 {
                release_tx.send(()).unwrap();
            }
            while threads.idle.load(Ordering::Acquire) < 3 {
                std::thread::yield_now();
            }
        }
        assert_eq!(
            names.lock().unwrap().len(),
            3,
            "20 rounds of 3 jobs ran on 3 threads"
        );
    }
}

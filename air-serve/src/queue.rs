//! The batching queue shared by a deployment's replicas and by a pipeline step's replicas or
//! task workers: callers push jobs, workers take them in batches.

use std::{
    collections::VecDeque,
    sync::{
        Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// How long a pipeline's worker whose queue ran empty, or a blocking pipeline caller, keeps
/// looking (yielding its core to any other runnable thread) before it sleeps. Waking a sleeping
/// thread costs ~10 µs on a virtual machine (a futex wake and an inter-processor interrupt),
/// which was most of a pipeline hop: `pipeline_bench --part overhead` measured a `Replicas` hop
/// at 22.7 µs without and 2.6 µs with it (blocking calls; 24 → 13 µs with `call_async`). A
/// deployment's replicas do not spin: `serve_bench` showed no gain there (its no-op model was
/// ~10% slower with it, within the machine's noise).
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// Calls `ready` (yielding between calls) until it answers `Some` or `spin` has passed.
pub(crate) fn spin_until<T>(spin: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if start.elapsed() >= spin {
            return None;
        }
        std::thread::yield_now();
    }
}

/// A job a worker takes from a [`BatchQueue`].
pub(crate) trait Queued: Send {
    /// When it was queued (the batch window starts at its oldest job's arrival).
    fn arrived(&self) -> Instant;
    /// Its caller has gone (timed out or cancelled): it is dropped instead of run.
    fn abandoned(&self) -> bool;
}

/// Jobs waiting for a worker. One worker at a time gathers a batch (the `gather` lock), so two
/// workers never split what should be one batch; the others work meanwhile. Workers pull, so a
/// job goes to whichever worker frees up first: the least loaded one.
pub(crate) struct BatchQueue<J> {
    /// The jobs, and whether the queue is closed.
    jobs: Mutex<(VecDeque<J>, bool)>,
    /// The jobs' count, read without the lock by a worker looking before it sleeps.
    queued: AtomicUsize,
    /// How long a worker finding the queue empty looks before it sleeps.
    spin: Duration,
    ready: Condvar,
    gather: Mutex<()>,
}

impl<J: Queued> BatchQueue<J> {
    /// A queue whose workers, finding it empty, look for `spin` before they sleep (zero: sleep
    /// at once).
    pub(crate) fn new(spin: Duration) -> Self {
        Self {
            jobs: Mutex::new((VecDeque::new(), false)),
            queued: AtomicUsize::new(0),
            spin,
            ready: Condvar::new(),
            gather: Mutex::new(()),
        }
    }

    /// Queues `job`; gives it back once the queue is closed.
    pub(crate) fn push(&self, job: J) -> Result<(), J> {
        let mut jobs = self.jobs.lock().expect("no panics under this lock");
        if jobs.1 {
            return Err(job);
        }
        jobs.0.push_back(job);
        self.queued.store(jobs.0.len(), Ordering::Release);
        drop(jobs);
        self.ready.notify_all();
        Ok(())
    }

    /// The jobs waiting, read without the lock (a hint: it may change at once).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.lock().expect("no panics under this lock").0.len()
    }

    /// Takes no more jobs; workers finish what is queued, then [`next_batch`](Self::next_batch)
    /// answers `None`.
    pub(crate) fn close(&self) {
        self.jobs.lock().expect("no panics under this lock").1 = true;
        self.ready.notify_all();
    }

    /// Up to `max` jobs, waiting at most `wait` after the oldest arrived for the batch to fill;
    /// `None` once closed and empty. Abandoned jobs are dropped.
    pub(crate) fn next_batch(&self, max: usize, wait: Duration) -> Option<Vec<J>> {
        self.take(max, wait, Block::UntilAJob)
    }

    /// As [`next_batch`](Self::next_batch), but an empty queue answers an empty batch at once
    /// (a task worker whose job another worker already took in its batch).
    pub(crate) fn try_batch(&self, max: usize, wait: Duration) -> Option<Vec<J>> {
        self.take(max, wait, Block::No)
    }

    fn take(&self, max: usize, wait: Duration, block: Block) -> Option<Vec<J>> {
        let _gather = self.gather.lock().expect("no panics under this lock");
        let mut jobs = self.jobs.lock().expect("no panics under this lock");
        loop {
            while jobs.0.is_empty() {
                if jobs.1 {
                    return None;
                }
                if block == Block::No {
                    return Some(Vec::new());
                }
                let mut arrived = None;
                if !self.spin.is_zero() {
                    drop(jobs);
                    arrived = spin_until(self.spin, || {
                        (self.queued.load(Ordering::Acquire) > 0).then_some(())
                    });
                    jobs = self.jobs.lock().expect("no panics under this lock");
                }
                if arrived.is_none() && jobs.0.is_empty() && !jobs.1 {
                    jobs = self.ready.wait(jobs).expect("no panics under this lock");
                }
            }
            let deadline = jobs.0[0].arrived() + wait;
            while jobs.0.len() < max && !jobs.1 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                jobs = self
                    .ready
                    .wait_timeout(jobs, deadline - now)
                    .expect("no panics under this lock")
                    .0;
            }
            let n = jobs.0.len().min(max);
            let batch: Vec<J> = jobs.0.drain(..n).filter(|j| !j.abandoned()).collect();
            self.queued.store(jobs.0.len(), Ordering::Release);
            if !batch.is_empty() {
                return Some(batch);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    UntilAJob,
    No,
}

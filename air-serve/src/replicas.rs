//! Which of a deployment's replicas are predicting, so that a request finding one free (and the
//! queue empty) can run on the caller's thread instead of being handed to the replica's thread.
//!
//! Handing a request to a replica thread and its answer back costs two thread wake-ups: on a
//! small machine under load, tens of microseconds and, when the scheduler runs other threads
//! first, milliseconds of tail latency. A request is run on the caller's thread (an HTTP worker,
//! or an in-process caller) only when the model is cheap — its running average per request
//! under [`INLINE_COST`] by default, so an async worker is never held longer than a short
//! poll — and its replicas are on the CPU. A replica's thread claims a replica before each
//! batch: its own, or another free one while a caller runs on its own (the replicas'
//! predictors are alike), else it yields until one is free.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

/// By default, requests of models averaging less than this per request may run on the caller's
/// thread ([`DeploymentConfig::with_run_on_caller_below`](crate::DeploymentConfig::with_run_on_caller_below)).
pub(crate) const INLINE_COST: Duration = Duration::from_micros(100);

/// The replicas' claims and the model's running cost.
pub(crate) struct Replicas {
    taken: Vec<AtomicBool>,
    /// Where the next caller starts looking for a free replica (spreads callers over them).
    next: AtomicUsize,
    /// Running average of a request's share of its batch's time, in ns (`u64::MAX`: none yet).
    cost_ns: AtomicU64,
    /// The running cost in ns under which callers may run requests (`None`: never).
    inline_below_ns: Option<u64>,
}

impl Replicas {
    /// `n` free replicas; callers run requests when the model's running cost per request is
    /// under `inline_below` (`None`: never).
    pub(crate) fn new(n: usize, inline_below: Option<Duration>) -> Self {
        Self {
            taken: (0..n).map(|_| AtomicBool::new(false)).collect(),
            next: AtomicUsize::new(0),
            cost_ns: AtomicU64::new(u64::MAX),
            inline_below_ns: inline_below.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// A free replica for a caller to run a request on, if the model is known to be cheap.
    pub(crate) fn try_claim(&self) -> Option<Claim<'_>> {
        let cost = self.cost_ns.load(Ordering::Relaxed);
        if cost == u64::MAX || self.inline_below_ns.is_none_or(|limit| cost >= limit) {
            return None;
        }
        let n = self.taken.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| (start + i) % n).find_map(|r| {
            self.taken[r]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                // Built only on success: a dropped `Claim` frees its replica.
                .then(|| Claim {
                    replicas: self,
                    replica: r,
                })
        })
    }

    /// A replica for replica thread `own`'s batch: its own when free, else any free one (a
    /// caller runs on its own; the predictors are alike), yielding until one is.
    pub(crate) fn claim(&self, own: usize) -> Claim<'_> {
        let n = self.taken.len();
        loop {
            let free = (0..n).map(|i| (own + i) % n).find(|&r| {
                self.taken[r]
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            });
            if let Some(replica) = free {
                return Claim {
                    replicas: self,
                    replica,
                };
            }
            std::thread::yield_now();
        }
    }

    /// A batch of `requests` took `elapsed`.
    pub(crate) fn record(&self, requests: usize, elapsed: Duration) {
        let sample =
            u64::try_from(elapsed.as_nanos() / requests.max(1) as u128).unwrap_or(u64::MAX);
        let old = self.cost_ns.load(Ordering::Relaxed);
        // An average over about the last 8 batches; the first replaces "none yet". Racing
        // updates may drop one sample: a running average does not need every one.
        let new = if old == u64::MAX {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.cost_ns.store(new, Ordering::Relaxed);
    }
}

/// A replica being predicted on; free again when dropped.
pub(crate) struct Claim<'a> {
    replicas: &'a Replicas,
    replica: usize,
}

impl Claim<'_> {
    /// The replica's index.
    pub(crate) fn replica(&self) -> usize {
        self.replica
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.replicas.taken[self.replica].store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_take_free_replicas_of_a_cheap_model_only() {
        let r = Replicas::new(2, Some(INLINE_COST));
        assert!(r.try_claim().is_none(), "no cost known yet");
        r.record(4, Duration::from_micros(40));
        let a = r.try_claim().expect("cheap and free");
        let b = r.try_claim().expect("the other one");
        assert_ne!(a.replica(), b.replica());
        assert!(r.try_claim().is_none(), "both taken");
        drop(a);
        let own = r.claim(b.replica());
        assert_eq!(own.replica(), b.replica() ^ 1, "the free one, not its own");
        assert!(r.try_claim().is_none());
        drop((b, own));
        for _ in 0..40 {
            r.record(1, Duration::from_millis(1));
        }
        assert!(r.try_claim().is_none(), "no longer cheap");
        let never = Replicas::new(1, None);
        never.record(1, Duration::from_micros(1));
        assert!(never.try_claim().is_none(), "never on the caller's thread");
        let always = Replicas::new(1, Some(Duration::MAX));
        assert!(always.try_claim().is_none(), "no cost known yet");
        always.record(1, Duration::from_secs(3600));
        assert!(always.try_claim().is_some());
    }
}

//! Collective operations between the workers of one run: all-reduce, broadcast, barrier.
//!
//! [`Collective`] is the seam between data-parallel training and the transport. The in-process
//! [`LocalCollective`] serves worker threads of one process; a multi-process or multi-node
//! transport implements the same trait. Values travel as flat `f32` buffers (a model's
//! gradients or parameters, flattened in module order, which is the same on every rank).
//!
//! Sums are taken in rank order once every rank has contributed, so an all-reduce gives
//! bit-identical results on every rank and from run to run regardless of arrival order.

use std::{
    fmt,
    sync::{Condvar, Mutex},
};

use crate::TrainError;

/// Operations every worker of a run calls in the same order.
pub trait Collective: Send + Sync + fmt::Debug {
    /// The number of ranks.
    fn world_size(&self) -> usize;

    /// Replaces `values` by their mean over all ranks. Every rank passes the same length.
    fn all_reduce_mean(&self, rank: usize, values: &mut [f32]) -> Result<(), TrainError>;

    /// Replaces `values` by their sum over all ranks, in `f64` (histograms of gradient
    /// boosting, whose sums must not lose precision).
    fn all_reduce_sum_f64(&self, rank: usize, values: &mut [f64]) -> Result<(), TrainError>;

    /// Replaces `values` on every rank by those of `root`.
    fn broadcast(&self, rank: usize, root: usize, values: &mut Vec<f32>) -> Result<(), TrainError>;

    /// Returns once every rank has called it.
    fn barrier(&self, rank: usize) -> Result<(), TrainError>;

    /// Called once by each rank whose train loop has returned; a rank still in another
    /// operation then fails with an error saying the workers' calls diverged.
    fn finish(&self, rank: usize) -> Result<(), TrainError>;

    /// Wakes every rank waiting now or later with [`TrainError::CollectiveAborted`] (a worker
    /// has failed; its peers must not wait for it forever).
    fn abort(&self, reason: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Mean,
    Sum,
    Broadcast(usize),
    Barrier,
    Finish,
}

impl Op {
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Mean => "all_reduce_mean".to_owned(),
            Self::Sum => "all_reduce_sum_f64".to_owned(),
            Self::Broadcast(root) => format!("broadcast from rank {root} (report or sync_model)"),
            Self::Barrier => "barrier (report)".to_owned(),
            Self::Finish => "finish (its train loop returned)".to_owned(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Completed rounds; waiters watch it change.
    generation: u64,
    op: Option<Op>,
    slots: Vec<Option<Vec<f64>>>,
    arrived: usize,
    result: Vec<f64>,
    error: Option<String>,
    aborted: Option<String>,
}

/// The in-process collective for worker threads.
#[derive(Debug)]
pub struct LocalCollective {
    world_size: usize,
    state: Mutex<State>,
    turn: Condvar,
}

impl LocalCollective {
    /// A collective for `world_size` ranks (at least 1).
    pub fn new(world_size: usize) -> Self {
        Self {
            world_size: world_size.max(1),
            state: Mutex::new(State {
                slots: vec![None; world_size.max(1)],
                ..State::default()
            }),
            turn: Condvar::new(),
        }
    }

    fn round(&self, rank: usize, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
        if rank >= self.world_size {
            return Err(TrainError::Collective(format!(
                "rank {rank} is outside the world of {} ranks",
                self.world_size
            )));
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = &st.aborted {
            return Err(TrainError::CollectiveAborted(reason.clone()));
        }
        match st.op {
            None => st.op = Some(op),
            Some(current) if current != op => {
                let message = format!(
                    "rank {rank} called {} while other ranks are in {}; every worker must make \
                     the same collective calls in the same order (and report equally often)",
                    op.describe(),
                    current.describe()
                );
                st.aborted = Some(message.clone());
                self.turn.notify_all();
                return Err(TrainError::Collective(message));
            }
            Some(_) => {}
        }
        if st.slots[rank].is_some() {
            return Err(TrainError::Collective(format!(
                "rank {rank} joined the same collective round twice"
            )));
        }
        st.slots[rank] = Some(values);
        st.arrived += 1;
        let generation = st.generation;
        if st.arrived == self.world_size {
            let slots: Vec<Vec<f64>> = st
                .slots
                .iter_mut()
                .map(|s| s.take().unwrap_or_default())
                .collect();
            let (result, error) = combine(op, slots);
            st.result = result;
            st.error = error;
            st.arrived = 0;
            st.op = None;
            st.generation += 1;
            self.turn.notify_all();
        } else {
            while st.generation == generation && st.aborted.is_none() {
                st = self.turn.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.generation == generation {
                let reason = st.aborted.clone().unwrap_or_default();
                return Err(TrainError::CollectiveAborted(reason));
            }
        }
        match &st.error {
            Some(e) => Err(TrainError::Collective(e.clone())),
            None => Ok(st.result.clone()),
        }
    }
}

pub(crate) fn combine(op: Op, slots: Vec<Vec<f64>>) -> (Vec<f64>, Option<String>) {
    match op {
        Op::Barrier | Op::Finish => (Vec::new(), None),
        Op::Broadcast(root) => (slots.into_iter().nth(root).unwrap_or_default(), None),
        Op::Mean | Op::Sum => {
            let n = slots[0].len();
            if let Some((rank, s)) = slots.iter().enumerate().find(|(_, s)| s.len() != n) {
                return (
                    Vec::new(),
                    Some(format!(
                        "all-reduce of {} values on rank {rank} but {n} on rank 0; every worker \
                         must reduce the same model",
                        s.len()
                    )),
                );
            }
            let mut sum = slots[0].clone();
            for s in &slots[1..] {
                for (a, b) in sum.iter_mut().zip(s) {
                    *a += b;
                }
            }
            if op == Op::Mean {
                let scale = 1.0 / slots.len() as f64;
                sum.iter_mut().for_each(|v| *v *= scale);
            }
            (sum, None)
        }
    }
}

/// A collective made of rounds: in each operation every rank hands in its part and gets the
/// combined result ([`combine`]). Implementing it gives a [`Collective`] — the conversions,
/// checks and single-rank shortcuts live once, here.
pub(crate) trait Rounds: Send + Sync + fmt::Debug {
    /// The number of ranks.
    fn ranks(&self) -> usize;
    /// One round: `rank`'s part of `op` in, the combined result out.
    fn round(&self, rank: usize, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError>;
    /// Releases every rank waiting now or later.
    fn release(&self, reason: &str);
}

impl<T: Rounds> Collective for T {
    fn world_size(&self) -> usize {
        self.ranks()
    }

    fn all_reduce_mean(&self, rank: usize, values: &mut [f32]) -> Result<(), TrainError> {
        if self.ranks() == 1 {
            return Ok(());
        }
        let mean = self.round(
            rank,
            Op::Mean,
            values.iter().map(|v| f64::from(*v)).collect(),
        )?;
        values.iter_mut().zip(mean).for_each(|(v, m)| *v = m as f32);
        Ok(())
    }

    fn all_reduce_sum_f64(&self, rank: usize, values: &mut [f64]) -> Result<(), TrainError> {
        if self.ranks() == 1 {
            return Ok(());
        }
        let sum = self.round(rank, Op::Sum, values.to_vec())?;
        if sum.len() != values.len() {
            return Err(TrainError::Collective(format!(
                "all-reduce answered {} values for {}",
                sum.len(),
                values.len()
            )));
        }
        values.copy_from_slice(&sum);
        Ok(())
    }

    fn broadcast(&self, rank: usize, root: usize, values: &mut Vec<f32>) -> Result<(), TrainError> {
        if root >= self.ranks() {
            return Err(TrainError::Collective(format!(
                "broadcast root {root} is outside the world of {} ranks",
                self.ranks()
            )));
        }
        if self.ranks() == 1 {
            return Ok(());
        }
        let mine = if rank == root {
            values.iter().map(|v| f64::from(*v)).collect()
        } else {
            Vec::new()
        };
        *values = self
            .round(rank, Op::Broadcast(root), mine)?
            .into_iter()
            .map(|v| v as f32)
            .collect();
        Ok(())
    }

    fn barrier(&self, rank: usize) -> Result<(), TrainError> {
        if self.ranks() == 1 {
            return Ok(());
        }
        self.round(rank, Op::Barrier, Vec::new()).map(|_| ())
    }

    fn finish(&self, rank: usize) -> Result<(), TrainError> {
        if self.ranks() == 1 {
            return Ok(());
        }
        self.round(rank, Op::Finish, Vec::new()).map(|_| ())
    }

    fn abort(&self, reason: &str) {
        self.release(reason);
    }
}

impl Rounds for LocalCollective {
    fn ranks(&self) -> usize {
        self.world_size
    }

    fn round(&self, rank: usize, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
        LocalCollective::round(self, rank, op, values)
    }

    fn release(&self, reason: &str) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.aborted.is_none() {
            st.aborted = Some(reason.to_owned());
        }
        self.turn.notify_all();
    }
}

/// Broadcasts `bytes` from `root` (its `bytes`; the others pass anything) and returns them on
/// every rank. Three bytes travel in each `f32` (integers below 2^24 are exact), after two
/// values holding the length.
pub(crate) fn broadcast_bytes(
    collective: &dyn Collective,
    rank: usize,
    root: usize,
    bytes: &[u8],
) -> Result<Vec<u8>, TrainError> {
    const LOW: usize = (1 << 24) - 1;
    let mut values = Vec::new();
    if rank == root {
        values.reserve(2 + bytes.len().div_ceil(3));
        values.push((bytes.len() & LOW) as f32);
        values.push((bytes.len() >> 24) as f32);
        values.extend(bytes.chunks(3).map(|c| {
            let word = c
                .iter()
                .enumerate()
                .fold(0u32, |w, (i, b)| w | (u32::from(*b) << (8 * i)));
            word as f32
        }));
    }
    collective.broadcast(rank, root, &mut values)?;
    let (len, words) = match values.as_slice() {
        [low, high, words @ ..] => ((*low as usize) | ((*high as usize) << 24), words),
        _ => {
            return Err(TrainError::Collective(
                "a byte broadcast lost its length".to_owned(),
            ));
        }
    };
    let out: Vec<u8> = words
        .iter()
        .flat_map(|w| (*w as u32).to_le_bytes().into_iter().take(3))
        .take(len)
        .collect();
    if out.len() == len {
        Ok(out)
    } else {
        Err(TrainError::Collective(format!(
            "a byte broadcast delivered {} of {len} bytes",
            out.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, thread};

    use super::*;

    #[test]
    fn all_reduce_broadcast_and_barrier_across_threads() {
        let c = Arc::new(LocalCollective::new(3));
        let handles: Vec<_> = (0..3)
            .map(|rank| {
                let c = c.clone();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    for step in 0..50 {
                        let mut v = vec![rank as f32 + step as f32, 1.0];
                        c.all_reduce_mean(rank, &mut v).unwrap();
                        out.push(v);
                        let mut s = [rank as f64 * 0.1, 1e-12];
                        c.all_reduce_sum_f64(rank, &mut s).unwrap();
                        assert!((s[0] - 0.30000000000000004).abs() < 1e-15 && s[1] == 3e-12);
                        let mut b = if rank == 2 { vec![step as f32] } else { vec![] };
                        c.broadcast(rank, 2, &mut b).unwrap();
                        assert_eq!(b, [step as f32]);
                        c.barrier(rank).unwrap();
                    }
                    out
                })
            })
            .collect();
        let results: Vec<Vec<Vec<f32>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (step, v) in results[0].iter().enumerate() {
            assert_eq!(v, &[1.0 + step as f32, 1.0]);
        }
        assert_eq!(results[0], results[1]);
        assert_eq!(results[1], results[2]);
    }

    #[test]
    fn bytes_broadcast_whole() {
        let c = LocalCollective::new(3);
        let message: Vec<u8> = (0..=255u8).chain(b"tail".iter().copied()).collect();
        let got: Vec<Vec<u8>> = thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|rank| {
                    let (c, m) = (&c, &message);
                    s.spawn(move || {
                        let mine = if rank == 1 { m.clone() } else { Vec::new() };
                        broadcast_bytes(c, rank, 1, &mine).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got.iter().all(|g| *g == message));
    }

    #[test]
    fn abort_releases_waiting_ranks_and_mismatches_are_errors() {
        let c = Arc::new(LocalCollective::new(2));
        let waiter = {
            let c = c.clone();
            thread::spawn(move || c.barrier(0))
        };
        thread::sleep(std::time::Duration::from_millis(20));
        c.abort("rank 1 failed");
        let err = waiter.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("rank 1 failed"), "{err}");
        assert!(c.barrier(1).is_err(), "later calls fail too");

        let c = Arc::new(LocalCollective::new(2));
        let other = {
            let c = c.clone();
            thread::spawn(move || c.all_reduce_mean(1, &mut [1.0, 2.0, 3.0]))
        };
        let mine = c.all_reduce_mean(0, &mut [1.0]);
        let theirs = other.join().unwrap();
        assert!(mine.is_err() && theirs.is_err());
        assert!(mine.unwrap_err().to_string().contains("same model"));
    }
}

//! [`TcpCollective`]: the [`Collective`](crate::Collective) across processes, over TCP through
//! rank 0 — each operation's parts go to rank 0, which combines them in rank order (exactly as
//! [`LocalCollective`](crate::LocalCollective) does, so results are bit-identical to the
//! threaded run) and answers every rank.
//!
//! A rank whose process dies closes its socket: rank 0 sees it at once (one reader thread per
//! rank), fails the operation in progress and sends every other rank an abort naming the lost
//! rank; a rank that loses rank 0 fails naming it.

use std::{
    fmt, io,
    net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs},
    sync::{
        Mutex,
        mpsc::{self, Receiver},
    },
    thread,
    time::{Duration, Instant},
};

use super::{
    ProcessEnv,
    wire::{self, Frame},
};
use crate::{
    TrainError,
    collective::{Op, Rounds, combine},
};

/// What rank 0 holds: a writer per other rank, and frames from their reader threads.
struct Hub {
    writers: Vec<Option<TcpStream>>,
    inbox: Receiver<(usize, io::Result<Frame>)>,
}

enum Link {
    Root(Hub),
    Peer(TcpStream),
}

/// The [`Collective`](crate::Collective) of one process in a multi-process run (one rank per
/// process).
pub struct TcpCollective {
    rank: usize,
    world_size: usize,
    link: Mutex<Link>,
    aborted: Mutex<Option<String>>,
}

impl fmt::Debug for TcpCollective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpCollective")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish_non_exhaustive()
    }
}

fn collective_error(message: impl Into<String>) -> TrainError {
    TrainError::Collective(message.into())
}

impl TcpCollective {
    /// Joins the run `env` describes: rank 0 listens on the coordinator address and waits for
    /// every other rank; the others connect to it, retrying until `timeout`. Returns once all
    /// `world_size` ranks have joined; an error (never a hang) after `timeout`, naming the
    /// address and the ranks missing.
    pub fn connect(env: &ProcessEnv, timeout: Duration) -> Result<Self, TrainError> {
        let link = if env.rank == 0 {
            Link::Root(accept_all(env, timeout)?)
        } else {
            Link::Peer(join(env, timeout)?)
        };
        Ok(Self {
            rank: env.rank,
            world_size: env.world_size,
            link: Mutex::new(link),
            aborted: Mutex::new(None),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    fn check_rank(&self, rank: usize) -> Result<(), TrainError> {
        if rank == self.rank {
            Ok(())
        } else {
            Err(collective_error(format!(
                "rank {rank} called the collective of the process of rank {}; across processes \
                 each process is one rank",
                self.rank
            )))
        }
    }

    fn aborted(&self) -> Option<String> {
        self.aborted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_aborted(&self, reason: &str) {
        let mut a = self.aborted.lock().unwrap_or_else(|p| p.into_inner());
        a.get_or_insert_with(|| reason.to_owned());
    }

    /// One operation: this rank's part in, the combined result out.
    fn round(&self, rank: usize, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
        self.check_rank(rank)?;
        if let Some(reason) = self.aborted() {
            return Err(TrainError::CollectiveAborted(reason));
        }
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = match &mut *link {
            Link::Root(hub) => root_round(hub, self.world_size, op, values),
            Link::Peer(stream) => peer_round(stream, op, values),
        };
        if let Err(TrainError::CollectiveAborted(reason)) = &outcome {
            self.set_aborted(reason);
        }
        outcome
    }
}

/// Rank 0's side of an operation: every rank's part (in any arrival order), combined in rank
/// order, answered to all.
fn root_round(hub: &mut Hub, world: usize, op: Op, mine: Vec<f64>) -> Result<Vec<f64>, TrainError> {
    let mut slots: Vec<Option<(Op, Vec<f64>)>> = vec![None; world];
    slots[0] = Some((op, mine));
    let mut missing = world - 1;
    while missing > 0 {
        let (rank, frame) = hub
            .inbox
            .recv()
            .map_err(|_| collective_error("every connection to the other ranks is gone"))?;
        match frame {
            Ok(Frame::Call(their_op, values)) if slots[rank].is_none() => {
                slots[rank] = Some((their_op, values));
                missing -= 1;
            }
            Ok(Frame::Abort(reason)) => {
                let reason = format!("rank {rank} aborted the run: {reason}");
                broadcast_abort(hub, &reason);
                return Err(TrainError::CollectiveAborted(reason));
            }
            Ok(other) => {
                let reason = format!("rank {rank} sent {other:?} out of turn");
                broadcast_abort(hub, &reason);
                return Err(TrainError::CollectiveAborted(reason));
            }
            Err(e) => {
                let reason = format!(
                    "lost rank {rank}: its connection closed ({e}); the process died or was \
                     killed"
                );
                hub.writers[rank] = None;
                broadcast_abort(hub, &reason);
                return Err(TrainError::CollectiveAborted(reason));
            }
        }
    }
    let slots: Vec<(Op, Vec<f64>)> = slots.into_iter().map(|s| s.expect("all arrived")).collect();
    let (result, error) = match slots.iter().position(|(o, _)| *o != op) {
        Some(r) => (
            Vec::new(),
            Some(format!(
                "the workers' calls diverged: rank 0 called {} while rank {r} called {}",
                op.describe(),
                slots[r].0.describe()
            )),
        ),
        None => combine(op, slots.into_iter().map(|(_, v)| v).collect()),
    };
    let answer = wire::encode(&match &error {
        Some(e) => Frame::Failed(e.clone()),
        None => Frame::Result(result.clone(), wire::Width::of(op)),
    });
    for (rank, w) in hub.writers.iter_mut().enumerate() {
        if let Some(stream) = w
            && let Err(e) = wire::write_encoded(stream, &answer)
        {
            return Err(collective_error(format!("answering rank {rank}: {e}")));
        }
    }
    match error {
        Some(e) => Err(collective_error(e)),
        None => Ok(result),
    }
}

fn broadcast_abort(hub: &mut Hub, reason: &str) {
    for stream in hub.writers.iter_mut().flatten() {
        let _ = wire::write(stream, &Frame::Abort(reason.to_owned()));
    }
}

/// A non-zero rank's side: send the part, wait for the answer.
fn peer_round(stream: &mut TcpStream, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
    let lost = |e: io::Error| {
        TrainError::CollectiveAborted(format!(
            "lost rank 0 (the coordinator): {e}; its process died, was killed or aborted"
        ))
    };
    wire::write(stream, &Frame::Call(op, values)).map_err(lost)?;
    match wire::read(stream).map_err(lost)? {
        Frame::Result(v, _) => Ok(v),
        Frame::Failed(e) => Err(collective_error(e)),
        Frame::Abort(reason) => Err(TrainError::CollectiveAborted(reason)),
        other => Err(collective_error(format!("rank 0 answered {other:?}"))),
    }
}

fn resolve(env: &ProcessEnv) -> Result<SocketAddr, TrainError> {
    let address = env.coordinator();
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| TrainError::LaunchEnv {
            variable: format!("the coordinator address (from {})", env.launcher),
            value: format!("{address:?}"),
            expected: "a host name or address this machine can resolve".to_owned(),
        })
}

/// Rank 0: listen, take every other rank's hello, start a reader per rank, welcome all.
fn accept_all(env: &ProcessEnv, timeout: Duration) -> Result<Hub, TrainError> {
    let address = resolve(env)?;
    let listener = TcpListener::bind(address).map_err(|e| {
        collective_error(format!(
            "rank 0 cannot listen on {address} (the coordinator address from {}): {e}",
            env.launcher
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| collective_error(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut writers: Vec<Option<TcpStream>> = (0..env.world_size).map(|_| None).collect();
    let mut joined = 1;
    while joined < env.world_size {
        match listener.accept() {
            Ok((mut stream, from)) => {
                stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(10))))
                    .map_err(|e| collective_error(e.to_string()))?;
                let rank = match wire::read(&mut stream) {
                    Ok(Frame::Hello { rank, world_size })
                        if world_size == env.world_size as u64 =>
                    {
                        usize::try_from(rank)
                            .ok()
                            .filter(|r| (1..env.world_size).contains(r))
                    }
                    _ => None,
                };
                match rank {
                    Some(r) if writers[r].is_none() => {
                        stream
                            .set_read_timeout(None)
                            .map_err(|e| collective_error(e.to_string()))?;
                        writers[r] = Some(stream);
                        joined += 1;
                    }
                    _ => {
                        tracing::warn!(%from, "refused a connection that is not a rank of this run")
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<usize> = (1..env.world_size)
                        .filter(|r| writers[*r].is_none())
                        .collect();
                    return Err(collective_error(format!(
                        "rank 0 waited {timeout:?} on {address} and ranks {missing:?} of \
                         {} never joined; check that they were started with the same world \
                         size and coordinator address",
                        env.world_size
                    )));
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(collective_error(format!("accepting on {address}: {e}"))),
        }
    }
    let (tx, inbox) = mpsc::channel();
    for (rank, w) in writers.iter_mut().enumerate() {
        let Some(stream) = w else { continue };
        wire::write(stream, &Frame::Welcome)
            .map_err(|e| collective_error(format!("welcoming rank {rank}: {e}")))?;
        let mut reader = stream
            .try_clone()
            .map_err(|e| collective_error(e.to_string()))?;
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("air-collective-rank{rank}"))
            .spawn(move || {
                loop {
                    let frame = wire::read(&mut reader);
                    let end = frame.is_err();
                    if tx.send((rank, frame)).is_err() || end {
                        break;
                    }
                }
            })
            .map_err(|e| collective_error(e.to_string()))?;
    }
    Ok(Hub { writers, inbox })
}

/// A non-zero rank: connect to rank 0 (retrying until the deadline), say hello, await the
/// welcome.
fn join(env: &ProcessEnv, timeout: Duration) -> Result<TcpStream, TrainError> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(collective_error(format!(
                "rank {} could not reach the coordinator {} (from {}) within {timeout:?}: \
                 {last_error}",
                env.rank,
                env.coordinator(),
                env.launcher
            )));
        }
        let attempt = resolve(env).and_then(|addr| {
            TcpStream::connect_timeout(&addr, remaining.min(Duration::from_secs(1)))
                .map_err(|e| collective_error(e.to_string()))
        });
        match attempt {
            Ok(mut stream) => {
                let hello = Frame::Hello {
                    rank: env.rank as u64,
                    world_size: env.world_size as u64,
                };
                stream
                    .set_read_timeout(Some(remaining))
                    .map_err(|e| collective_error(e.to_string()))?;
                wire::write(&mut stream, &hello).map_err(|e| collective_error(e.to_string()))?;
                return match wire::read(&mut stream) {
                    Ok(Frame::Welcome) => {
                        stream
                            .set_read_timeout(None)
                            .and_then(|()| stream.set_nodelay(true))
                            .map_err(|e| collective_error(e.to_string()))?;
                        Ok(stream)
                    }
                    Ok(other) => Err(collective_error(format!(
                        "the coordinator answered {other:?} to rank {}'s hello",
                        env.rank
                    ))),
                    Err(e) => Err(collective_error(format!(
                        "rank {} joined {} but was never welcomed within {timeout:?} ({e}): \
                         some other rank did not join",
                        env.rank,
                        env.coordinator()
                    ))),
                };
            }
            Err(e) => {
                last_error = e.to_string();
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Rounds for TcpCollective {
    fn ranks(&self) -> usize {
        self.world_size
    }

    fn round(&self, rank: usize, op: Op, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
        TcpCollective::round(self, rank, op, values)
    }

    fn release(&self, reason: &str) {
        self.set_aborted(reason);
        // The link may be held by an operation of this process in progress; try without
        // waiting (the operation fails on its own when peers see the abort).
        if let Ok(mut link) = self.link.try_lock() {
            match &mut *link {
                Link::Root(hub) => broadcast_abort(hub, &format!("rank 0 aborted: {reason}")),
                Link::Peer(stream) => {
                    let _ = wire::write(stream, &Frame::Abort(reason.to_owned()));
                }
            }
        }
    }
}

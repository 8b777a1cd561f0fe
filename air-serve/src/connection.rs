//! The HTTP/1.1 connections of a [`Server`](crate::Server): the listener, the accept loop with
//! its connection cap, and each connection's timeouts.
//!
//! A connection is in one of three phases, tracked by [`Activity`]:
//! - `Head`: waiting for a request's headers, from the connection's start or from the first
//!   byte of the next request; closed (without an answer) after `header_timeout`;
//! - `Busy`: a request is being read, predicted or answered; the body timeout and the request
//!   timeout of the handler bound it;
//! - `Idle`: a keep-alive connection between requests; closed after `idle_timeout`.
//!
//! Past `max_connections` open connections a new one is answered 503 at once and closed, so a
//! flood of connections neither stalls the clients in the kernel's backlog nor exhausts file
//! descriptors. Only HTTP/1.1 is spoken (hyper's `http1` connection, whatever features other
//! crates enable in hyper): an HTTP/2 preface is refused.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::Router;
use hyper::{Request, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{Notify, watch},
    task::JoinSet,
};
use tower_service::Service;

/// How long a refused connection is given to read its 503 before it is closed.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// Refused connections lingering at once (reading their 503); beyond, they are closed at once.
const MAX_LINGERING_REFUSALS: usize = 256;

/// The connection limits of a server (from its `ServeConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Binds `addr` with a listen backlog of `backlog` (the kernel caps it at
/// `net.core.somaxconn`). Call inside the server's runtime.
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted server may bind while its old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Connection counts, written with the server's metrics.
#[derive(Debug, Default)]
pub(crate) struct ConnectionMetrics {
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_closed: AtomicU64,
}

impl ConnectionMetrics {
    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The counts for a scrape.
    pub(crate) fn sample(&self) -> crate::metrics::ConnectionSample {
        crate::metrics::ConnectionSample {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            open: self.open() as i64,
        }
    }
}

/// Accepts connections until `stop` turns true, then waits for the open ones to finish (each
/// finishes its request in flight and closes).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<ConnectionMetrics>,
) -> io::Result<()> {
    let mut connections = JoinSet::new();
    let lingering = Arc::new(AtomicUsize::new(0));
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => {}
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    metrics.accepted.fetch_add(1, Ordering::Relaxed);
                    // Counted until just before its socket closes (see `serve_connection`), so
                    // a client that saw its connection end finds the slot free.
                    if metrics.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
                        metrics.open.fetch_sub(1, Ordering::AcqRel);
                        refuse(stream, limits.max_connections, &lingering, &metrics);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let open = OpenSlot(Arc::clone(&metrics));
                    connections.spawn(serve_connection(stream, router.clone(), limits, stop.clone(), open));
                }
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // pause rather than spin; the backlog holds new clients meanwhile.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers a connection over the cap with 503 and closes it. The answer is written, then the
/// request is read and thrown away briefly, so the client reads the 503 rather than a reset.
fn refuse(
    mut stream: TcpStream,
    max_connections: usize,
    lingering: &Arc<AtomicUsize>,
    metrics: &ConnectionMetrics,
) {
    metrics.refused.fetch_add(1, Ordering::Relaxed);
    if lingering.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING_REFUSALS {
        lingering.fetch_sub(1, Ordering::AcqRel);
        return; // dropped: closed at once
    }
    let lingering = Arc::clone(lingering);
    tokio::spawn(async move {
        let body = serde_json::json!({
            "error": "overloaded",
            "message": format!(
                "the server has {max_connections} connections open (max_connections); retry later"
            ),
            "status": 503,
        })
        .to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(REFUSAL_GRACE, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < 64 << 10 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
        lingering.fetch_sub(1, Ordering::AcqRel);
    });
}

/// One connection: hyper's HTTP/1.1 state machine, watched for the header and idle timeouts,
/// shut down gracefully when the server stops.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    open: OpenSlot,
) {
    let metrics = Arc::clone(&open.0);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |request: Request<Incoming>| {
            activity.set(Phase::Busy);
            let activity = Arc::clone(&activity);
            // A Router is always ready (axum documents it), so it is called without poll_ready.
            let answer = router.clone().call(request);
            async move {
                let response = answer.await;
                activity.set(Phase::Idle);
                response
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        // The header timeout is ours (it starts at a request's first byte, not at the end of
        // the previous answer, which is the idle timeout's business).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    // Declared after the connection, so dropped before it: the slot is free before the socket
    // closes.
    let _open = open;
    let mut closing = false;
    loop {
        if *stop.borrow() && !closing {
            closing = true;
            connection.as_mut().graceful_shutdown();
        }
        let (phase, since) = activity.get();
        let deadline = match phase {
            Phase::Head => Some(since + limits.header_timeout),
            Phase::Idle => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !closing => {}
            () = activity.changed.notified() => {}
            () = sleep_until(deadline) => {
                if activity.get() != (phase, since) {
                    continue;
                }
                match phase {
                    Phase::Head => {
                        metrics.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(timeout = ?limits.header_timeout, "request headers did not arrive in time; closing");
                        return;
                    }
                    Phase::Idle if !closing => {
                        metrics.idle_closed.fetch_add(1, Ordering::Relaxed);
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    // Still open a whole idle timeout after the graceful close: drop it.
                    Phase::Idle => return,
                    Phase::Busy => {}
                }
            }
        }
    }
}

/// An open connection, counted in [`ConnectionMetrics::open`] until dropped.
struct OpenSlot(Arc<ConnectionMetrics>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Head = 0,
    Busy = 1,
    Idle = 2,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Head,
            1 => Self::Busy,
            _ => Self::Idle,
        }
    }
}

/// A connection's phase and when it began, shared by its reader, its service and its watch.
#[derive(Debug)]
struct Activity {
    phase: AtomicU8,
    /// Nanoseconds from `epoch` to the start of the phase.
    since: AtomicU64,
    epoch: Instant,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(0),
            epoch: Instant::now(),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn set(&self, phase: Phase) {
        // The time first: a reader that sees the new phase sees its time.
        self.since.store(self.now(), Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts a request (its header timeout runs from now).
    fn bytes_read(&self) {
        if self.phase.load(Ordering::Acquire) == Phase::Idle as u8 {
            self.set(Phase::Head);
        }
    }

    fn get(&self) -> (Phase, Instant) {
        let phase = Phase::from_u8(self.phase.load(Ordering::Acquire));
        let since = self.epoch + Duration::from_nanos(self.since.load(Ordering::Acquire));
        (phase, since)
    }
}

/// A stream that reports reads to the connection's [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

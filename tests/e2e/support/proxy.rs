//! A TCP proxy for fault tests: put between a client and a server (the controller and the
//! apiserver, the apiserver and etcd), it forwards bytes both ways and, on command, cuts every
//! open connection at once (a watch broken mid-stream, as a load balancer or a node drain does),
//! stalls (holds every byte until resumed), or delays every chunk it forwards (a slow disk or
//! network under etcd). TLS passes through untouched: the proxy never sees plaintext.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops accepting (and cuts what is open) when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: SocketAddr,
    /// Bumped by [`Proxy::cut`]: every connection open at the time ends.
    generation: watch::Sender<u64>,
    /// While true nothing is forwarded (reads stop, so the peers' buffers fill and wait).
    stalled: watch::Sender<bool>,
    /// Added before each chunk is forwarded.
    latency: Mutex<Duration>,
    open: AtomicUsize,
    accepted: AtomicUsize,
}

impl Proxy {
    /// Starts a proxy on a free loopback port to `upstream`. Needs a Tokio runtime (the
    /// test's); does not block, so a sync setup (a control plane's start) can call it.
    pub fn start(upstream: SocketAddr) -> Self {
        let std = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
        std.set_nonblocking(true).expect("non-blocking listener");
        let addr = std.local_addr().expect("proxy address");
        let listener = TcpListener::from_std(std).expect("proxy listener in the runtime");
        let shared = Arc::new(Shared {
            upstream,
            generation: watch::channel(0).0,
            stalled: watch::channel(false).0,
            latency: Mutex::new(Duration::ZERO),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// Cuts every connection open now (both sides see the socket close) and returns how many
    /// there were. New connections are accepted as before.
    pub fn cut(&self) -> usize {
        let open = self.shared.open.load(Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
        open
    }

    /// Stops (true) or resumes (false) forwarding on every connection, open or new.
    pub fn stall(&self, stalled: bool) {
        self.shared.stalled.send_replace(stalled);
    }

    /// Delays every forwarded chunk by `latency` (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().expect("latency") = latency;
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(connection(client, shared.clone()));
    }
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut cut = shared.generation.subscribe();
    cut.mark_unchanged();
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    shared.open.fetch_add(1, Ordering::SeqCst);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Dropping both halves of both sockets closes them: the cut is a plain close, as a
    // load balancer's or a dead node's is, not a polite end of the HTTP stream.
    tokio::select! {
        _ = pump(client_read, server_write, &shared) => {}
        _ = pump(server_read, client_write, &shared) => {}
        _ = cut.changed() => {}
    }
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

/// Forwards one direction until either side closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut stalled = shared.stalled.subscribe();
    loop {
        // A stall holds before reading, so nothing more leaves the sender's buffers.
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let latency = *shared.latency.lock().expect("latency");
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

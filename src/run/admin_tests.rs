//! The admin server's limits, over real sockets: slow or silent clients are cut, clients
//! holding connections cannot raise the open connections (file descriptors, buffers) past the
//! cap nor lock probes out, and an oversized request head is refused at the buffer limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{serve_with, Health, Limits};
use crate::run::metrics::{Metrics, ReasonLabel};

const LONG: Duration = Duration::from_secs(60);
/// How long a test waits for what must happen (returning as soon as it does): generous, as a
/// loaded machine may take seconds to schedule the server's tasks.
const BOUND: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(limits: Limits) -> Server {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let (addr, task) =
        serve_with("127.0.0.1:0".parse().unwrap(), limits, health, metrics.clone()).await.unwrap();
    Server { addr, metrics, task }
}

impl Server {
    fn dropped(&self, reason: &str) -> u64 {
        self.metrics
            .admin_connections_dropped
            .get_or_create(&ReasonLabel { reason: reason.to_string() })
            .get()
    }

    fn open(&self) -> i64 {
        self.metrics.admin_connections.get()
    }

    /// A whole GET: the status line and body of the answer.
    async fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await.unwrap();
        let (response, _) = closed_within(&mut stream, BOUND).await.expect("answered and closed");
        response
    }
}

/// What the server sent until it closed the connection, and how long that took; `None` if it
/// was still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
    let start = Instant::now();
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some((String::from_utf8_lossy(&received).into_owned(), start.elapsed()))
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn silent_and_slow_header_clients_are_cut_after_the_header_timeout() {
    let limit = Duration::from_millis(300);
    let server =
        start(Limits { header_read_timeout: limit, connection_timeout: LONG, max_connections: 8 }).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n").await.unwrap();
    let connected = Instant::now();
    for (name, stream) in [("silent", &mut silent), ("slow", &mut slow)] {
        closed_within(stream, BOUND).await.unwrap_or_else(|| panic!("{name}: still open"));
        let after = connected.elapsed();
        assert!(after >= limit / 2, "{name}: closed after {after:?}, before the timeout");
    }
    wait_for("both counted", || server.dropped("timeout") == 2).await;
    assert!(server.get("/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_connection_is_closed_at_the_connection_timeout() {
    let limit = Duration::from_millis(300);
    let server =
        start(Limits { header_read_timeout: LONG, connection_timeout: limit, max_connections: 8 }).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let (_, after) = closed_within(&mut slow, BOUND).await.expect("closed");
    assert!(after >= limit / 2, "closed after {after:?}, before the timeout");
    wait_for("counted", || server.dropped("timeout") == 1).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_close_the_oldest_and_probes_still_answer() {
    let cap = 4;
    let server =
        start(Limits { header_read_timeout: LONG, connection_timeout: LONG, max_connections: cap }).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    wait_for("16 evictions", || server.dropped("evicted") == 16).await;
    assert!(server.open() <= cap as i64, "{} open", server.open());

    let answer = server.get("/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{answer}");
    assert!(server.open() <= cap as i64, "{} open", server.open());
    assert_eq!(server.dropped("evicted"), 17, "the probe took the oldest one's slot");
    // The oldest were closed, the newest still wait.
    for (i, stream) in idle.iter_mut().enumerate() {
        let closed = closed_within(stream, if i < 17 { BOUND } else { Duration::from_millis(100) }).await;
        assert_eq!(closed.is_some(), i < 17, "connection {i}");
    }
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_at_the_buffer_limit() {
    let server =
        start(Limits { header_read_timeout: LONG, connection_timeout: LONG, max_connections: 8 }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(300 * 1024, b'a');
    // The server stops reading at its limit: the end of the write may fail.
    let _ = stream.write_all(&head).await;
    let (answer, _) = closed_within(&mut stream, BOUND).await.expect("refused, not buffered");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(server.get("/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_answer_larger_than_the_buffer_limit_is_sent_whole() {
    let server = start(super::LIMITS).await;
    for i in 0..3000 {
        server.metrics.watch_event(&format!("Kind{i}"));
    }
    let answer = server.get("/metrics").await;
    assert!(answer.len() > 4 * super::MAX_BUF_SIZE, "{} bytes", answer.len());
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("# EOF\n"), "{} bytes", answer.len());
    assert!(answer.contains("kind=\"Kind2999\""));
}

#[test]
fn readiness_is_lost_only_while_no_cloudflared_serves() {
    let health = Health::default();
    assert_eq!(health.readiness(), Err("no config written and verified yet".to_string()));
    health.set_ready();
    assert_eq!(health.readiness(), Ok(()));
    health.set_down("no cloudflared runs the config: it exited with exit status: 1".to_string());
    assert_eq!(
        health.readiness(),
        Err("no cloudflared runs the config: it exited with exit status: 1".to_string())
    );
    assert!(!health.is_ready());
    health.set_ready();
    assert!(!health.is_ready(), "ready once, but no connector now");
    health.set_serving();
    assert!(health.is_ready());
}

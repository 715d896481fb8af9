//! The admin server of the real binary under hostile clients (docs/run.md "Admin server"):
//! idle connections and oversized request heads cost it a bounded number of file descriptors
//! and bounded memory, and `/healthz` still answers meanwhile.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");
const TIMEOUT: Duration = Duration::from_secs(10);
/// `admin::LIMITS.max_connections`.
const CAP: usize = 64;

/// `run --manifests examples/`, killed on drop.
struct Sidecar {
    child: Child,
    admin: String,
    _out: tempfile::TempDir,
}

impl Sidecar {
    fn start() -> Sidecar {
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--manifests", concat!(env!("CARGO_MANIFEST_DIR"), "/examples"), "--config-out"])
            .arg(out.path().join("config.yml"))
            .args(["--reload", "none", "--admin-addr", "127.0.0.1:0"])
            .args(["--tunnel-id", "6ff42ae2-765d-4adf-8112-31c55c1551ef"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cloudflared-routes run");
        let lines = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if line.contains("admin server listening") {
                    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("addr="));
                    let _ = tx.send(addr.unwrap_or_default().to_string());
                }
            }
        });
        let admin = rx.recv_timeout(TIMEOUT).expect("no `admin server listening` log line");
        let deadline = Instant::now() + TIMEOUT;
        while !out.path().join("config.yml").exists() {
            assert!(Instant::now() < deadline, "no config written");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sidecar { child, admin, _out: out }
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits until the process's descriptor count stops changing, and returns it.
    fn settled_fds(&self) -> usize {
        let mut last = self.fds();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.fds();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    fn healthz(&self) -> String {
        let mut stream = TcpStream::connect(&self.admin).unwrap();
        // Generous: it must answer, not race a loaded machine (a read blocked for good fails).
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("/healthz answers within 30s");
        response
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn idle_connections_cost_a_bounded_number_of_fds_and_healthz_still_answers() {
    let sidecar = Sidecar::start();
    let before = sidecar.settled_fds();
    let idle: Vec<TcpStream> = (0..5 * CAP).map(|_| TcpStream::connect(&sidecar.admin).unwrap()).collect();
    let during = sidecar.settled_fds();
    assert!(during <= before + CAP + 4, "{} connections held {} descriptors", idle.len(), during - before);
    let answer = sidecar.healthz();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn unterminated_oversized_headers_cost_bounded_memory() {
    let sidecar = Sidecar::start();
    let before = sidecar.rss_kib();
    let mut head = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(300 * 1024, b'a');
    let held: Vec<TcpStream> = (0..4 * CAP)
        .map(|_| {
            let mut stream = TcpStream::connect(&sidecar.admin).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            // Refused at the buffer limit: the rest of the write may fail.
            let _ = stream.write_all(&head);
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let grown = sidecar.rss_kib().saturating_sub(before);
    // Unbounded, each connection would hold its 300 KB (75 MB here).
    assert!(grown < 10 * 1024, "{} connections grew the resident set by {grown} KiB", held.len());
    let answer = sidecar.healthz();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

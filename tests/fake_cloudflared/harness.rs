//! Shared by the tests that run the stand-in cloudflared (`main.rs` beside this file): where
//! its binary is, free loopback ports, config files, and its event log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The stand-in's binary, `<target>/debug/examples/fake-cloudflared`. `cargo test` builds
/// examples; `cargo test --test NAME` does not, so it is built here when it is missing or
/// older than its source (only then: a shared target directory may be locked by other builds).
pub fn fake_cloudflared() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // <target>/debug/deps/<test>-<hash> → <target>/debug/examples/fake-cloudflared
        let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/debug");
        let bin = profile_dir.join("examples").join("fake-cloudflared");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let source = modified(&root.join("tests/fake_cloudflared/stand_in.rs"));
        if modified(&bin).is_none_or(|built| source.is_some_and(|source| source > built)) {
            let built = std::process::Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--example", "fake-cloudflared", "--manifest-path"])
                .arg(root.join("Cargo.toml"))
                .status();
            if !matches!(built, Ok(s) if s.success()) {
                eprintln!("note: building the fake-cloudflared example failed ({built:?})");
            }
        }
        assert!(bin.exists(), "{} is missing: run `cargo test` (it builds the examples)", bin.display());
        bin
    })
    .clone()
}

/// `n` distinct loopback ports, free when handed out, and never handed out twice while the
/// process that took them runs, by this process or another test process (nextest runs test
/// binaries side by side): each is held by an exclusive lock on a file named after it, which
/// the system lets go when the process ends. They are taken below the kernel's ephemeral range
/// (`ip_local_port_range`) when it starts above 22000, where no `bind(…:0)` nor `connect`
/// picks a port: a port bound to 0 and released at once, as before, went back to that pool,
/// and a test running in parallel could be given it too (a stand-in then exited with "cannot
/// listen"). With a range starting lower, 21000..32768 is used, part of it ephemeral.
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    /// Above the stand-in's default metrics ports (20241-20245).
    const FIRST: u32 = 21000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    /// The locks of the ports handed out, held until the process ends.
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let end = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > FIRST + 1000)
        .unwrap_or(32768);
    let span = end - FIRST;
    let start = std::process::id() * 97 % span;
    let _ = NEXT.compare_exchange(0, start + 1, Ordering::SeqCst, Ordering::SeqCst);
    let locks = std::env::temp_dir().join("cloudflared-routes-test-ports");
    std::fs::create_dir_all(&locks).expect("the test ports' lock directory");
    let mut ports = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        let Ok(lock) = std::fs::File::create(locks.join(port.to_string())) else { continue };
        if lock.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "no {n} free loopback ports from {FIRST} to {end}");
    ports
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A cloudflared config routing each `(hostname, service)`, then the catch-all.
pub fn config_yaml(rules: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\noriginRequest:\n  connectTimeout: 10s\ningress:\n",
    );
    for (hostname, service) in rules {
        yaml.push_str(&format!("  - hostname: {hostname}\n    path: ^/\n    service: {service}\n"));
    }
    yaml.push_str("  - service: http_status:404\n");
    yaml
}

/// One line of the stand-in's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub millis: u128,
    pub pid: u32,
    pub what: String,
}

/// The event log every stand-in of a test appends to.
pub struct EventLog {
    pub path: PathBuf,
}

impl EventLog {
    pub fn new(dir: &Path) -> EventLog {
        EventLog { path: dir.join("events.log") }
    }

    pub fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                Some(Event {
                    millis: parts.next()?.parse().ok()?,
                    pid: parts.next()?.parse().ok()?,
                    what: parts.next()?.to_string(),
                })
            })
            .collect()
    }

    /// Index (in file order, which is time order) of the first event of `pid` starting with
    /// `what`.
    pub fn position(&self, pid: u32, what: &str) -> Option<usize> {
        self.events().iter().position(|e| e.pid == pid && e.what.starts_with(what))
    }

    /// The pids in order of their `started` line, with their metrics address.
    pub fn starts(&self) -> Vec<(u32, String)> {
        self.events()
            .into_iter()
            .filter(|e| e.what.starts_with("started "))
            .map(|e| {
                let metrics = e.what.rsplit("metrics=").next().unwrap_or_default().to_string();
                (e.pid, metrics)
            })
            .collect()
    }

    pub fn has(&self, pid: u32, what: &str) -> bool {
        self.position(pid, what).is_some()
    }

    /// Polls the log until `done` holds (panics with the log after `timeout`).
    pub async fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.events()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; events:\n{}", self.dump());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn dump(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

/// Whether a process exists (a zombie counts: use after it should have been reaped).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

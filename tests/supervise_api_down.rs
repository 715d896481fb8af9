//! `run --reload supervise` restarted while the Kubernetes API does not answer (a sidecar
//! container restarted during a control-plane outage; the `emptyDir` still holds the last
//! config.yml written): the real binary, the fake API server (real list/watch over HTTP) and
//! the stand-in cloudflared.
//!
//! The tunnel keeps serving that config while the source is not synced, `/readyz` says 503 and
//! why, and once the API answers, the same objects restart nothing; a change then reloads as
//! ever.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "fake_cloudflared/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflared_routes::run::verify;
use fake_apiserver::objects;
use fake_apiserver::FakeApiServer;
use harness::{fake_cloudflared, loopback, EventLog};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");
const TUNNEL: &str = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
/// Discovery retries an unreachable API with back-off (0.8 s, 1.6 s, 3.2 s, 6.4 s…).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `cloudflared-routes run --reload supervise` over the stand-in, its log collected.
struct Sidecar {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    admin: String,
    events: EventLog,
}

impl Sidecar {
    async fn start(dir: &Path, name: &str, api: &str, config: &Path, ports: [u16; 2]) -> Sidecar {
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters: [{{name: fake, cluster: {{server: \"{api}\"}}}}]\n\
                 contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: infra}}}}]\n\
                 users: [{{name: fake, user: {{}}}}]\n"
            ),
        )
        .unwrap();
        let event_dir = dir.join(name);
        std::fs::create_dir_all(&event_dir).unwrap();
        let events = EventLog::new(&event_dir);
        let mut child = Command::new(BIN)
            .args(["run", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--config-out")
            .arg(config)
            .args(["--tunnel-id", TUNNEL, "--reload", "supervise", "--debounce", "50ms"])
            .args(["--admin-addr", "127.0.0.1:0", "--leader-election-namespace", "infra"])
            .args(["--supervise-metrics-ports", &format!("{},{}", ports[0], ports[1])])
            .arg("--")
            .arg(fake_cloudflared())
            .args(["tunnel", "run"])
            .env("RUST_LOG", "info")
            .env("FAKE_CF_READY_AFTER_MS", "50")
            .env("FAKE_CF_EVENT_LOG", &events.path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cloudflared-routes run");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let (sink, prefix) = (log.clone(), format!("[{name}]"));
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                eprintln!("{prefix} {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let mut sidecar = Sidecar { child, log, admin: String::new(), events };
        sidecar.admin = sidecar
            .wait_for_log("the admin address", |line| {
                line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).map(str::to_string)
            })
            .await;
        sidecar
    }

    async fn wait_for_log<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(found) = self.log.lock().unwrap().iter().find_map(|l| pick(l)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no log line for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` on the admin server: status and body.
    async fn get(&self, path: &str) -> (u16, String) {
        let (admin, path) = (self.admin.clone(), path.to_string());
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(&admin).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
            (status, body)
        })
        .await
        .unwrap()
    }

    async fn wait_ready(&self, what: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (status, body) = self.get("/readyz").await;
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "not ready: {what}: {body}\n{}", self.events.dump());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, and the exit (its children drained).
    async fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "{status:?}");
                return;
            }
            assert!(Instant::now() < deadline, "run did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        // A failed test must not leave the stand-ins running: they are not killed with `run`.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in self.events.starts() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// The objects both API servers hold: a Gateway, its class, and a route to Service apps/web.
fn objects(server: &FakeApiServer) {
    for object in objects::base() {
        server.apply(object);
    }
    server.apply(objects::http_route("apps", "web", "web.example.com", "/", "web"));
}

/// The file's bytes, inode and modification time: whether it was written again.
fn file_state(path: &PathBuf) -> (String, u64, i64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (std::fs::read_to_string(path).unwrap(), meta.ino(), meta.mtime(), meta.mtime_nsec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_while_the_api_is_down_the_tunnel_serves_the_last_config_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("emptydir/config.yml");
    let ports = harness::free_ports(2);
    let ports = [ports[0], ports[1]];

    // A first run writes and serves the config, then its container stops.
    let first_api = FakeApiServer::start().await;
    objects(&first_api);
    let first = Sidecar::start(dir.path(), "first", &first_api.url(), &config, ports).await;
    first.wait_ready("the first run").await;
    first.stop().await;
    first_api.shutdown();
    let written = file_state(&config);
    assert!(written.0.contains("web.example.com"), "{}", written.0);

    // Restarted while the API does not answer (nothing listens where the kubeconfig points).
    let api_port = harness::free_ports(1)[0];
    let api = format!("http://127.0.0.1:{api_port}");
    let second = Sidecar::start(dir.path(), "second", &api, &config, ports).await;
    let deadline = Instant::now() + TIMEOUT;
    while second.events.starts().is_empty() {
        assert!(Instant::now() < deadline, "no cloudflared serves while the API is down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second
        .wait_for_log("the warning", |l| {
            (l.contains("serves the last config.yml written") && l.contains("not synced")).then_some(())
        })
        .await;
    assert_eq!(second.events.starts().len(), 1, "{}", second.events.dump());
    // The child runs the file on disk (the first child takes the first port).
    verify::verify(loopback(ports[0]), &written.0, TIMEOUT)
        .await
        .expect("the supervised cloudflared runs the last config written");
    let (status, body) = second.get("/readyz").await;
    assert_eq!(status, 503, "not ready while the objects are not read: {body}");
    assert!(body.contains("not synced"), "{body}");
    let metrics = second.get("/metrics").await.1;
    assert!(metrics.contains("cloudflared_routes_child_serving 1"), "{metrics}");
    // The source's first failed attempt is logged by a task of its own, and the log is read by a
    // thread: waited for, not looked up at once.
    second
        .wait_for_log("the source retrying: the API is still down", |l| l.contains("retrying").then_some(()))
        .await;
    assert_eq!(file_state(&config), written, "nothing is written before the source syncs");

    // The API comes back with the same objects: the same bytes, so no write and no restart.
    let back = FakeApiServer::start_at(&format!("127.0.0.1:{api_port}")).await;
    objects(&back);
    second.wait_ready("once the API answered").await;
    second
        .wait_for_log("the verification", |l| {
            l.contains("cloudflared runs the rendered config").then_some(())
        })
        .await;
    assert_eq!(second.events.starts().len(), 1, "restarted for the same bytes:\n{}", second.events.dump());
    assert_eq!(file_state(&config), written, "the same bytes are not written again");

    // From here on, changes follow the usual path: written, and a new child started.
    back.apply(objects::http_route("apps", "api", "api.example.com", "/", "web"));
    let deadline = Instant::now() + TIMEOUT;
    while second.events.starts().len() < 2
        || !std::fs::read_to_string(&config).unwrap().contains("api.example.com")
    {
        assert!(Instant::now() < deadline, "the change was not reloaded:\n{}", second.events.dump());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.stop().await;
}

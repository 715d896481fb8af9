//! `run --manifests`: the real binary keeps config.yml in step with a directory of manifests.
//!
//! Every test starts its own process on its own temp directories, with the admin server on a
//! free port (read back from the log), and kills it when dropped. Waits are polls bounded by
//! [`TIMEOUT`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[path = "fake_cloudflared/harness.rs"]
mod harness;

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `cloudflared-routes run`, killed on drop.
struct Sidecar {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    out: PathBuf,
    admin: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Sidecar {
    /// Starts `run` on a copy of examples/ (plus `extra` files), and waits for the admin
    /// server's address.
    fn start(extra: &[(&str, &str)]) -> Sidecar {
        Sidecar::start_with(extra, &["--tunnel-id", "6ff42ae2-765d-4adf-8112-31c55c1551ef"])
    }

    fn start_with(extra: &[(&str, &str)], args: &[&str]) -> Sidecar {
        Sidecar::start_env(extra, args, &[])
    }

    /// `args` come after the fixed options (`--reload none` unless they give `--reload`), so
    /// they may end with `-- <cloudflared argv>`; `env` is added to the environment.
    fn start_env(extra: &[(&str, &str)], args: &[&str], env: &[(&str, &str)]) -> Sidecar {
        let manifests = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir("examples").unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, manifests.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        for (name, text) in extra {
            std::fs::write(manifests.path().join(name), text).unwrap();
        }
        Sidecar::spawn(manifests, tempfile::tempdir().unwrap(), args, env)
    }

    /// Starts `run` on `manifests`, writing `out_dir/out/config.yml`.
    fn spawn(
        manifests: tempfile::TempDir,
        out_dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Sidecar {
        let out = out_dir.path().join("out/config.yml");
        let mut child = Command::new(BIN)
            .args(["run", "--manifests"])
            .arg(manifests.path())
            .arg("--config-out")
            .arg(&out)
            .args(if args.contains(&"--reload") { &[][..] } else { &["--reload", "none"][..] })
            .args(["--admin-addr", "127.0.0.1:0", "--debounce", "50ms"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cloudflared-routes run");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                eprintln!("[run] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let mut sidecar = Sidecar { child, log, out, admin: String::new(), _dirs: (manifests, out_dir) };
        sidecar.admin = sidecar.wait_for_log("admin server listening", |line| {
            line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).map(str::to_string)
        });
        sidecar
    }

    /// Waits (bounded) for the process to exit.
    fn wait_exit(&mut self, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn manifests(&self) -> &Path {
        self._dirs.0.path()
    }

    fn wait_for_log<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(found) = self.log.lock().unwrap().iter().find_map(|l| pick(l)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no log line for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn config(&self) -> Option<String> {
        std::fs::read_to_string(&self.out).ok()
    }

    /// Polls until the config satisfies `check`; returns it.
    fn wait_config(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(config) = self.config().filter(|c| check(c)) {
                return config;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; config:\n{:?}", self.config());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.manifests().join(name), text).unwrap();
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.admin).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route(name: &str, host: &str, service: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\n\
         spec:\n  parentRefs: [{{name: cloudflare-tunnel, namespace: cloudflare-tunnel-system, sectionName: web}}]\n\
         \x20 hostnames: [{host}]\n  rules:\n  - backendRefs: [{{name: {service}, port: 80}}]\n"
    )
}

fn assert_valid(config: &str) {
    let report = routes_core::validate::validate_str(config);
    assert!(report.is_valid(), "{:?}\n{config}", report.errors);
}

#[test]
fn file_follows_added_changed_and_deleted_routes() {
    let sidecar = Sidecar::start(&[]);
    let config = sidecar.wait_config("the first config", |c| c.contains("www.example.com"));
    assert_valid(&config);
    assert!(config.contains("tunnel: '6ff42ae2-765d-4adf-8112-31c55c1551ef'"), "{config}");

    sidecar.write("new.yaml", &route("new", "new.example.com", "frontend"));
    let config = sidecar.wait_config("the added route", |c| c.contains("new.example.com"));
    assert_valid(&config);

    sidecar.write("new.yaml", &route("new", "renamed.example.com", "frontend"));
    let config = sidecar.wait_config("the changed route", |c| {
        c.contains("renamed.example.com") && !c.contains("new.example")
    });
    assert_valid(&config);

    std::fs::remove_file(sidecar.manifests().join("new.yaml")).unwrap();
    let config = sidecar.wait_config("the deleted route", |c| !c.contains("renamed.example.com"));
    assert_valid(&config);
    assert!(config.contains("www.example.com"), "the others stay:\n{config}");
}

#[test]
fn broken_yaml_keeps_the_last_good_content_and_a_bad_route_disturbs_nothing() {
    let sidecar = Sidecar::start(&[("extra.yaml", &route("extra", "extra.example.com", "frontend"))]);
    sidecar.wait_config("the first config", |c| c.contains("extra.example.com"));

    // Malformed YAML in one file: its objects stay as they were, the rest goes on.
    sidecar.write("extra.yaml", "apiVersion: [unclosed\n");
    sidecar.write("other.yaml", &route("other", "other.example.com", "frontend"));
    let config = sidecar.wait_config("the other route", |c| c.contains("other.example.com"));
    assert!(config.contains("extra.example.com"), "last good content of extra.yaml kept:\n{config}");
    assert!(config.contains("www.example.com"));
    sidecar.wait_for_log("the malformed file warning", |l| {
        (l.contains("extra.yaml") && l.contains("last good content is kept")).then_some(())
    });

    // A route with a hostname the schema refuses is rejected alone.
    let bad = route("bad", "Bad_Host.example.com", "frontend");
    let good = route("good", "good.example.com", "frontend");
    sidecar.write("two.yaml", &format!("{bad}---\n{good}"));
    let config = sidecar.wait_config("the good route", |c| c.contains("good.example.com"));
    assert!(!config.to_lowercase().contains("bad_host"), "{config}");
    assert!(config.contains("extra.example.com") && config.contains("other.example.com"));
    assert_valid(&config);
}

#[test]
fn a_file_broken_at_start_holds_every_render_until_it_reads() {
    // A pod restart with one broken manifest: rendered without that file's objects, the good
    // config.yml of the earlier run would be replaced by one without them.
    let broken = route("extra", "extra.example.com", "frontend").replace("port: 80", "port: \"80\"");
    let sidecar = Sidecar::start(&[("extra.yaml", &broken)]);
    sidecar.wait_for_log("the not-synced warning", |l| {
        (l.contains("nothing is rendered until every manifest file has read cleanly once")
            && l.contains("extra.yaml"))
        .then_some(())
    });
    sidecar.wait_for_log("the field", |l| {
        l.contains("spec.rules[0].backendRefs[0].port: invalid type: string").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sidecar.config(), None, "nothing written");
    assert_eq!(sidecar.get("/readyz").0, 503);

    sidecar.write("extra.yaml", &route("extra", "extra.example.com", "frontend"));
    let config = sidecar.wait_config("the first config", |c| c.contains("extra.example.com"));
    assert!(config.contains("www.example.com"), "{config}");
}

#[test]
fn an_empty_manifests_directory_at_start_leaves_the_config_on_disk() {
    // A pod whose git-sync sidecar has not cloned yet: the config.yml of the earlier run must
    // not be replaced by the catch-all alone.
    let (manifests, out_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir(out_dir.path().join("out")).unwrap();
    let earlier = "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\ningress:\n- hostname: www.example.com\n  service: http://web.default.svc.cluster.local:80\n- service: http_status:404\n";
    std::fs::write(out_dir.path().join("out/config.yml"), earlier).unwrap();
    let sidecar =
        Sidecar::spawn(manifests, out_dir, &["--tunnel-id", "6ff42ae2-765d-4adf-8112-31c55c1551ef"], &[]);
    sidecar.wait_for_log("the not-synced warning", |l| {
        l.contains("nothing is rendered until the manifests hold a Gateway").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sidecar.config().as_deref(), Some(earlier), "the earlier config was replaced");
    assert_eq!(sidecar.get("/readyz").0, 503);

    // The clone lands: rendered at once.
    for entry in std::fs::read_dir("examples").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, sidecar.manifests().join(path.file_name().unwrap())).unwrap();
        }
    }
    let config = sidecar.wait_config("the examples' config", |c| c != earlier);
    assert!(config.contains("www.example.com") && config.contains("# HTTPRoute"), "{config}");
    assert_valid(&config);
}

#[test]
fn names_with_line_breaks_cannot_forge_log_lines() {
    // A name is any YAML string in a file: one that holds a line break would write a log line
    // of its own choosing into a text-format log.
    let forged = "FORGED INFO cloudflared_routes: all is well";
    let named =
        route("r", "r.example.com", "frontend").replace("name: r,", &format!("name: \"r\\n{forged}\","));
    assert!(named.contains("\\nFORGED"), "{named}");
    // Defined twice: the warning quotes the name.
    let sidecar = Sidecar::start(&[("a.yaml", &named), ("b.yaml", &named)]);
    sidecar.wait_for_log("the warning", |l| l.contains("is defined again").then_some(()));
    sidecar.wait_config("the first config", |c| c.contains("www.example.com"));
    let log = sidecar.log.lock().unwrap();
    assert!(!log.iter().any(|l| l.starts_with("FORGED")), "a forged line:\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("is defined again") && l.contains("r\\nFORGED")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn unchanged_config_is_not_rewritten() {
    let sidecar = Sidecar::start(&[]);
    sidecar.wait_config("the first config", |c| c.contains("www.example.com"));
    // Let the first write settle, then look at the file's identity.
    std::thread::sleep(Duration::from_millis(300));
    let before = std::fs::metadata(&sidecar.out).unwrap();

    // Events that change nothing the config depends on: the same bytes rewritten, a file
    // that is not a manifest, a comment.
    let route_file = sidecar.manifests().join("httproute.yaml");
    let text = std::fs::read_to_string(&route_file).unwrap();
    std::fs::write(&route_file, &text).unwrap();
    sidecar.write("notes.txt", "not a manifest");
    std::fs::write(&route_file, format!("# a comment\n{text}")).unwrap();
    std::thread::sleep(Duration::from_millis(1000));

    let after = std::fs::metadata(&sidecar.out).unwrap();
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
    let out_dir = sidecar.out.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".cloudflared-routes-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn admin_endpoints_answer_and_sigterm_exits_zero() {
    let mut sidecar = Sidecar::start(&[]);
    assert_eq!(sidecar.get("/healthz").0, 200);
    sidecar.wait_config("the first config", |c| c.contains("www.example.com"));
    let deadline = Instant::now() + TIMEOUT;
    while sidecar.get("/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, metrics) = sidecar.get("/metrics");
    assert_eq!(status, 200);
    for family in [
        "cloudflared_routes_renders_total",
        "cloudflared_routes_render_duration_seconds",
        "cloudflared_routes_config_writes_total",
        "cloudflared_routes_config_write_bytes_total",
        "cloudflared_routes_ingress_rules",
        "cloudflared_routes_routes",
        "cloudflared_routes_reloads_total",
        "cloudflared_routes_last_successful_reload_timestamp_seconds",
        "cloudflared_routes_status_patches",
        "cloudflared_routes_watch_events_total",
    ] {
        assert!(metrics.contains(family), "{family} missing from:\n{metrics}");
    }
    assert!(metrics.contains(r#"cloudflared_routes_routes{outcome="accepted"}"#), "{metrics}");
    assert_eq!(sidecar.get("/nope").0, 404);

    kill(Pid::from_raw(sidecar.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = sidecar.wait_exit("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn credentials_file_and_base_config_changes_re_render() {
    const SECRET: &str = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr";
    let settings = tempfile::tempdir().unwrap();
    let credentials = settings.path().join("credentials.json");
    let base = settings.path().join("base.yml");
    let write_credentials = |id: &str| {
        // Replaced by rename, as a Secret volume update or an editor would.
        let temp = settings.path().join("..tmp");
        std::fs::write(
            &temp,
            format!(r#"{{"AccountTag":"acc","TunnelSecret":"{SECRET}","TunnelID":"{id}"}}"#),
        )
        .unwrap();
        std::fs::rename(&temp, &credentials).unwrap();
    };
    write_credentials("11111111-2222-3333-4444-555555555555");
    std::fs::write(&base, "originRequest:\n  connectTimeout: 10s\n").unwrap();
    let args = ["--credentials-file", credentials.to_str().unwrap(), "--base-config", base.to_str().unwrap()];
    let sidecar = Sidecar::start_with(&[], &args);
    let config = sidecar.wait_config("the first config", |c| c.contains("www.example.com"));
    assert!(config.contains("11111111-2222-3333-4444-555555555555"), "{config}");
    assert!(config.contains("connectTimeout: 10s"), "{config}");

    write_credentials("66666666-7777-8888-9999-000000000000");
    sidecar.wait_config("the new tunnel id", |c| c.contains("66666666-7777-8888-9999-000000000000"));

    std::fs::write(&base, "originRequest:\n  connectTimeout: 20s\n").unwrap();
    sidecar.wait_config("the new base config", |c| c.contains("connectTimeout: 20s"));

    // A broken base config: the last good one stays, and so does the file.
    std::fs::write(&base, "originRequest: [\n").unwrap();
    sidecar.wait_for_log("the base config warning", |l| {
        l.contains("keeping the last good base config").then_some(())
    });
    assert!(sidecar.config().unwrap().contains("connectTimeout: 20s"));
    assert!(!sidecar.log.lock().unwrap().iter().any(|l| l.contains(SECRET)), "the tunnel secret was logged");
}

#[test]
fn unusable_input_exits_2_naming_it() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["run", "--manifests", "/nonexistent/manifests", "--config-out"])
        .arg(out.path().join("config.yml"))
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/manifests"), "{stderr}");
}

#[test]
fn a_second_sigterm_stops_at_once_and_kills_the_children() {
    // A supervised cloudflared that takes a minute to drain, as a real one may with open
    // connections: the first SIGTERM waits for it; the second stops now.
    let dir = tempfile::tempdir().unwrap();
    let log = harness::EventLog::new(dir.path());
    let ports = harness::free_ports(2);
    let ports = format!("{},{}", ports[0], ports[1]);
    let fake = harness::fake_cloudflared().display().to_string();
    let events = log.path.display().to_string();
    let args = [
        "--tunnel-id",
        "6ff42ae2-765d-4adf-8112-31c55c1551ef",
        "--reload",
        "supervise",
        "--supervise-metrics-ports",
        &ports,
        "--drain-timeout",
        "120s",
        "--",
        &fake,
        "tunnel",
        "run",
    ];
    let mut sidecar =
        Sidecar::start_env(&[], &args, &[("FAKE_CF_GRACE_MS", "60000"), ("FAKE_CF_EVENT_LOG", &events)]);
    sidecar.wait_for_log("cloudflared verified", |l| {
        l.contains("cloudflared runs the rendered config").then_some(())
    });
    let child = log.starts()[0].0;

    let pid = Pid::from_raw(sidecar.child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    sidecar.wait_for_log("the stop", |l| l.contains("SIGTERM received: stopping").then_some(()));
    let deadline = Instant::now() + TIMEOUT;
    while !log.has(child, "sigterm") {
        assert!(Instant::now() < deadline, "the child got no SIGTERM:\n{}", log.dump());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sidecar.child.try_wait().unwrap().is_none(), "still waiting for the child to drain");

    kill(pid, Signal::SIGTERM).unwrap();
    let status = sidecar.wait_exit("a stop at once after a second SIGTERM");
    assert_eq!(status.code(), Some(1), "{status:?}");
    let deadline = Instant::now() + TIMEOUT;
    while harness::process_exists(child) {
        assert!(Instant::now() < deadline, "the supervised cloudflared {child} was left running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!log.has(child, "exited"), "killed, not drained:\n{}", log.dump());
}

/// Polls `path` on the admin server until `check` holds; returns the last answer.
fn wait_admin(sidecar: &Sidecar, path: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (status, body) = sidecar.get(path);
        if check(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {path}: {status}\n{body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the series `series` (name and labels as exposed) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_supervised_cloudflared_that_dies_and_cannot_restart_makes_the_pod_unready_until_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let log = harness::EventLog::new(dir.path());
    let failing = dir.path().join("revoked");
    let ports = harness::free_ports(2);
    let ports = format!("{},{}", ports[0], ports[1]);
    let fake = harness::fake_cloudflared().display().to_string();
    let (events, failing_env) = (log.path.display().to_string(), failing.display().to_string());
    let args = [
        "--tunnel-id",
        "6ff42ae2-765d-4adf-8112-31c55c1551ef",
        "--reload",
        "supervise",
        "--supervise-metrics-ports",
        &ports,
        "--",
        &fake,
        "tunnel",
        "run",
    ];
    let env = [
        ("FAKE_CF_READY_AFTER_MS", "50"),
        ("FAKE_CF_EVENT_LOG", &events),
        ("FAKE_CF_FAIL_IF_EXISTS", &failing_env),
    ];
    let sidecar = Sidecar::start_env(&[], &args, &env);
    wait_admin(&sidecar, "/readyz", "ready", |status, _| status == 200);
    let metrics = sidecar.get("/metrics").1;
    assert_eq!(sample(&metrics, "cloudflared_routes_child_serving"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, r#"cloudflared_routes_child_exits_total{expected="false"}"#), Some(0.0));

    // The tunnel is revoked and the child dies: every restart exits 1 (after 1 s, then 2 s).
    std::fs::write(&failing, "").unwrap();
    let child = log.starts()[0].0;
    kill(Pid::from_raw(child as i32), Signal::SIGKILL).unwrap();
    let why = wait_admin(&sidecar, "/readyz", "not ready", |status, _| status == 503);
    assert!(why.contains("no cloudflared runs the config") && why.contains("signal: 9"), "{why}");
    // The SIGKILL and a restart that failed.
    let metrics = wait_admin(&sidecar, "/metrics", "two unexpected exits", |_, m| {
        sample(m, r#"cloudflared_routes_child_exits_total{expected="false"}"#).is_some_and(|n| n >= 2.0)
    });
    assert!(log.events().iter().any(|e| e.what == "failing"), "{}", log.dump());
    assert_eq!(sample(&metrics, "cloudflared_routes_child_serving"), Some(0.0), "{metrics}");
    assert_eq!(sidecar.get("/readyz").0, 503, "still no connector");

    // It works again: the next restart serves, and the pod is ready again.
    std::fs::remove_file(&failing).unwrap();
    wait_admin(&sidecar, "/readyz", "ready again", |status, _| status == 200);
    let metrics = sidecar.get("/metrics").1;
    assert_eq!(sample(&metrics, "cloudflared_routes_child_serving"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, r#"cloudflared_routes_reloads_total{result="ok"}"#), Some(1.0), "{metrics}");
}

//! Runtime benchmark of `cloudflared-routes run` (issue 3): event → file latency with 1,000
//! HTTPRoutes, and resident memory with 10,000 HTTPRoutes cached.
//!
//! `cargo bench --bench runtime` (bench profile: release with line tables).
//!
//! What runs: the real binary (`cloudflared-routes run --reload none`, built by cargo for this
//! bench), pointed through a kubeconfig file at the fake Kubernetes API server of the tests
//! (`tests/fake_apiserver/`), which runs in this process on 127.0.0.1. So the whole `run` is
//! measured as deployed: kube's client and watchers over HTTP, conversion, the source's
//! snapshot, debounce, translate + render + validate, the byte comparison, the atomic write
//! (fsync of the file and the directory, on whatever filesystem holds `$TMPDIR`), leader
//! election and the status writer (which GETs and PATCHes each changed object's status). The
//! child's memory is its own: the fake API server's copies of the objects live in this process.
//!
//! - Latency: one change of one HTTPRoute at a time (a new Exact path in its first rule). The
//!   clock starts just before the fake API server stores the object and sends the watch event,
//!   and stops when this process has read back a `config.yml` holding the new path (woken by
//!   inotify on the file's directory, checked by reading the file). Each change starts with the
//!   child idle (no CPU time used for 30 ms), so what follows a write (the reloader, the status
//!   write) is not counted in the next change. Once with the default `--debounce 200ms`, once
//!   with `--debounce 0` (processing alone).
//! - Memory: `VmRSS`, `RssAnon`, `RssFile` and `VmHWM` of the child from `/proc/PID/status`:
//!   a child with no routes (the baseline), the two latency children after their changes, and
//!   a child started with 10,000 routes (listed in pages of 500, as kube's watcher asks), after
//!   its first render and after its status writes.
//!
//! Environment: `BENCH_CHANGES` (changes per latency run, default 200), `BENCH_ONLY=latency` or
//! `memory`, `BENCH_ROUTES` (latency run, default 1000), `BENCH_MEMORY_ROUTES` (default 10000),
//! `BENCH_SERVE=N` (only serve N routes and print a kubeconfig, to run `run` under a profiler),
//! `BENCH_BIN` (measure another build of `cloudflared-routes`, e.g. an older commit's).

#[path = "../tests/fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fake_apiserver::objects::{self, CONTROLLER, V1};
use fake_apiserver::FakeApiServer;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");

/// The binary to measure: this build's, or `BENCH_BIN` (another build, to compare).
fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| BIN.to_string())
}
const TUNNEL_ID: &str = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
/// Longest wait for any one thing the child does (a first render of 10,000 routes included).
const TIMEOUT: Duration = Duration::from_secs(60);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The objects: the render benchmark's shape (crates/core/benches/render.rs) as API objects.

/// A GatewayClass of ours, a Gateway `infra/gw` with three listeners, 11 Namespaces and 100
/// Services (10 per namespace `team-N`).
fn base_objects() -> Vec<Value> {
    let listener = |name: &str, hostname: Option<&str>| {
        let mut l = json!({"name": name, "port": 80, "protocol": "HTTP",
                           "allowedRoutes": {"namespaces": {"from": "All"}}});
        if let Some(h) = hostname {
            l["hostname"] = json!(h);
        }
        l
    };
    let mut all = vec![
        json!({"apiVersion": V1, "kind": "GatewayClass", "metadata": {"name": "cf"},
               "spec": {"controllerName": CONTROLLER}}),
        json!({"apiVersion": V1, "kind": "Gateway", "metadata": {"namespace": "infra", "name": "gw"},
               "spec": {"gatewayClassName": "cf", "listeners": [
                   listener("apps", Some("*.apps.example.com")),
                   listener("api", Some("api.example.com")),
                   listener("any", None)]}}),
        objects::namespace("infra"),
    ];
    for ns in 0..10 {
        let ns = format!("team-{ns}");
        all.push(objects::namespace(&ns));
        for svc in 0..10 {
            all.push(objects::service(&ns, &format!("svc-{svc}"), 8080));
        }
    }
    all
}

/// The Exact path of route `i`'s first rule: `/r{i}/exact`, or `/r{i}/m{change}z` once changed.
fn exact_path(i: usize, change: Option<usize>) -> String {
    match change {
        None => format!("/r{i}/exact"),
        Some(k) => format!("/r{i}/m{k}z"),
    }
}

/// HTTPRoute `team-{i%10}/route-{i}`: 4 rules (Exact, PathPrefix, RegularExpression, a shorter
/// PathPrefix) over exact, shared, wildcard and unlisted hostnames.
fn route(i: usize, change: Option<usize>) -> Value {
    let host = match i % 4 {
        0 => format!("app-{i}.apps.example.com"),
        1 => "api.example.com".to_string(),
        2 => format!("*.team-{}.apps.example.com", i % 10),
        _ => format!("site-{i}.example.org"),
    };
    let rule = |kind: &str, path: String, k: usize| {
        json!({"matches": [{"path": {"type": kind, "value": path}}],
               "backendRefs": [{"name": format!("svc-{}", (i + k) % 10), "port": 8080}]})
    };
    json!({"apiVersion": V1, "kind": "HTTPRoute",
           "metadata": {"namespace": format!("team-{}", i % 10), "name": format!("route-{i}")},
           "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": [host],
                    "rules": [rule("Exact", exact_path(i, change), 0),
                              rule("PathPrefix", format!("/r{i}/prefix"), 1),
                              rule("RegularExpression", format!("/r{i}/v[0-9]+/.*"), 2),
                              rule("PathPrefix", format!("/r{i}"), 3)]}})
}

/// A fake API server holding the base objects and `routes` HTTPRoutes.
fn start_server(runtime: &tokio::runtime::Runtime, routes: usize) -> FakeApiServer {
    let server = runtime.block_on(FakeApiServer::start());
    for object in base_objects() {
        server.apply(object);
    }
    for i in 0..routes {
        server.apply(route(i, None));
    }
    server
}

/// A kubeconfig naming the fake API server (no credentials: it asks for none).
fn kubeconfig_for(server: &FakeApiServer) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
         clusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\n\
         contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: infra}}}}]\n\
         users: [{{name: fake, user: {{}}}}]\n",
        server.url()
    )
}

/// `BENCH_SERVE=N`: only serve the objects with N routes, for running `run` by hand under a
/// profiler (`perf record -g`, `heaptrack`); the kubeconfig's path is printed. Ends when killed.
fn serve(runtime: &tokio::runtime::Runtime, routes: usize) {
    let server = start_server(runtime, routes);
    let path =
        std::env::temp_dir().join(format!("cloudflared-routes-bench-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, kubeconfig_for(&server)).expect("write the kubeconfig");
    println!("serving {routes} HTTPRoutes at {}; --kubeconfig {}", server.url(), path.display());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

// ---------------------------------------------------------------------------------------------
// The child: `cloudflared-routes run` against the fake API server.

struct Sidecar {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    admin: String,
    out: PathBuf,
    events: mpsc::Receiver<()>,
    _watcher: notify::RecommendedWatcher,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    fn start(server: &FakeApiServer, debounce: &str) -> Sidecar {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_for(server)).expect("write the kubeconfig");
        let out_dir = dir.path().join("out");
        std::fs::create_dir(&out_dir).expect("out dir");
        let out = out_dir.join("config.yml");
        // inotify on the directory: the atomic rename shows as an event naming the target.
        // Only changes: reading the file (this bench's checks, the child's byte comparison) is
        // an access event too, and waking on those made every check trigger the next one, a
        // busy loop taking a core from the child.
        let (tx, events) = mpsc::channel();
        let target = out.clone();
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            let changed = |e: &notify::Event| {
                matches!(e.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_))
            };
            if e.is_ok_and(|e| changed(&e) && e.paths.contains(&target)) {
                let _ = tx.send(());
            }
        })
        .expect("notify");
        watcher.watch(&out_dir, RecursiveMode::NonRecursive).expect("watch the out dir");

        let mut child = Command::new(bin())
            .arg("run")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--config-out")
            .arg(&out)
            .args(["--reload", "none", "--admin-addr", "127.0.0.1:0", "--tunnel-id", TUNNEL_ID])
            .args(["--leader-election-namespace", "infra", "--log-level", "info"])
            .args(["--debounce", debounce])
            .env("POD_NAME", "bench")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cloudflared-routes run");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if line.contains("WARN") || line.contains("ERROR") {
                    // kube's client logs a whole response body it cannot read: keep it short.
                    eprintln!("[run] {}", line.chars().take(400).collect::<String>());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut sidecar =
            Sidecar { child, log, admin: String::new(), out, events, _watcher: watcher, _dir: dir };
        sidecar.admin = sidecar.wait_for_log("admin server listening", |line| {
            line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).map(str::to_string)
        });
        sidecar
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_for_log<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(found) = self.log.lock().unwrap().iter().find_map(|l| find(l)) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cloudflared-routes run exited ({status}) before {what}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the file holds `needle`; returns when its content was read back.
    fn wait_for_file(&self, needle: &str) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // The rename may have come before the wait began: check first, then sleep.
            if std::fs::read(&self.out).is_ok_and(|b| contains(&b, needle)) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "timed out waiting for {needle} in the config");
            // Every event names the target; a 50 ms poll covers a lost event.
            let _ = self.events.recv_timeout(Duration::from_millis(50));
            while self.events.try_recv().is_ok() {}
        }
    }

    fn drain_events(&self) {
        while self.events.try_recv().is_ok() {}
    }

    fn metrics(&self) -> String {
        let mut stream = TcpStream::connect(&self.admin).expect("admin server");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read /metrics");
        response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    /// Waits until the status writer has handled at least `objects` objects and stopped for 1 s.
    fn wait_for_statuses(&self, objects: f64) {
        let deadline = Instant::now() + TIMEOUT;
        let mut last = (-1.0, Instant::now());
        loop {
            let done = metric(&self.metrics(), "cloudflared_routes_status_patches_total");
            if done != last.0 {
                last = (done, Instant::now());
            } else if done >= objects && last.1.elapsed() >= Duration::from_secs(1) {
                return;
            }
            assert!(Instant::now() < deadline, "status writes did not settle ({done} of {objects})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// CPU time (user + system, clock ticks) the child has used so far.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, f)| f).split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    }

    /// Waits until the child has used no CPU time for 30 ms (at most 10 s).
    fn wait_until_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut before = self.cpu_ticks();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(30));
            let now = self.cpu_ticks();
            if now == before {
                return;
            }
            before = now;
        }
    }

    fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    fn file_len(&self) -> usize {
        std::fs::metadata(&self.out).map_or(0, |m| m.len() as usize)
    }

    /// SIGTERM, as a pod's end: the Lease is released and the process exits.
    fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether the file's bytes hold `needle`. With `str::contains` (a two-way search: well under
/// a millisecond for the 0.7 MB of 1,000 routes): comparing at every offset, as this bench
/// first did, took tens of milliseconds per check, CPU taken from the child on a small machine.
fn contains(haystack: &[u8], needle: &str) -> bool {
    std::str::from_utf8(haystack).is_ok_and(|text| text.contains(needle))
}

/// Sum of every sample of a metric (all label sets): `name{…} value` or `name value`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
}

impl Memory {
    /// From `/proc/PID/status` (kB).
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
            hwm: field("VmHWM:"),
        }
    }

    fn row(&self, what: &str) -> String {
        let mib = |kb: u64| kb as f64 / 1024.0;
        format!(
            "{what:<52} {:>7.1} {:>7.1} {:>7.1} {:>7.1}",
            mib(self.rss),
            mib(self.anon),
            mib(self.file),
            mib(self.hwm)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Latency.

struct Latency {
    debounce: &'static str,
    samples: Vec<Duration>,
    /// Mean translate + render + validate time of the renders during the changes.
    render_mean: Duration,
    renders: f64,
    memory: Memory,
    bytes: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_run(
    runtime: &tokio::runtime::Runtime,
    routes: usize,
    changes: usize,
    debounce: &'static str,
) -> Latency {
    let server = start_server(runtime, routes);
    let sidecar = Sidecar::start(&server, debounce);
    sidecar.wait_for_file(&exact_path(routes - 1, None));
    // Steady state: every status written once (routes, the Gateway, the GatewayClass).
    sidecar.wait_for_statuses((routes + 2) as f64);
    let before = sidecar.metrics();
    let mut samples = Vec::with_capacity(changes);
    for k in 0..changes {
        // Spread over the routes (7919 is prime, so coprime with the route count).
        let i = (k * 7919 + 13) % routes;
        let object = route(i, Some(k));
        sidecar.drain_events();
        let start = Instant::now();
        server.apply(object);
        let seen = sidecar.wait_for_file(&exact_path(i, Some(k)));
        samples.push(seen - start);
        // What follows the write (the reloader, the status write) is not part of this change.
        sidecar.wait_until_idle();
    }
    let after = sidecar.metrics();
    let diff = |name: &str| metric(&after, name) - metric(&before, name);
    let renders = diff("cloudflared_routes_render_duration_seconds_count");
    let render_mean =
        Duration::from_secs_f64(diff("cloudflared_routes_render_duration_seconds_sum") / renders.max(1.0));
    let memory = sidecar.memory();
    let bytes = sidecar.file_len();
    sidecar.stop();
    samples.sort();
    Latency { debounce, samples, render_mean, renders, memory, bytes }
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// Baseline: a process with no routes, synced, its file and statuses written.
fn memory_baseline(runtime: &tokio::runtime::Runtime) -> Vec<String> {
    let server = start_server(runtime, 0);
    let sidecar = Sidecar::start(&server, "200ms");
    sidecar.wait_for_file("http_status:404");
    sidecar.wait_for_statuses(2.0);
    let row = sidecar.memory().row("baseline: 0 routes, synced, file and statuses written");
    sidecar.stop();
    vec![row]
}

/// The routes already there at start: listed (in pages of 500, as kube's watcher asks),
/// converted, cached, translated, rendered and validated.
fn memory_by_list(runtime: &tokio::runtime::Runtime, routes: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let server = start_server(runtime, routes);
    let started = Instant::now();
    let sidecar = Sidecar::start(&server, "200ms");
    // The first render, written or refused (a refusal is logged and counted, not written).
    let deadline = Instant::now() + TIMEOUT;
    while metric(&sidecar.metrics(), "cloudflared_routes_renders_total") < 1.0 {
        assert!(Instant::now() < deadline, "no render of {routes} routes");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rendered = started.elapsed();
    // The render is counted before the write (and its fsyncs) completes: give the write time.
    let has_last = || std::fs::read(&sidecar.out).is_ok_and(|b| contains(&b, &exact_path(routes - 1, None)));
    let write_deadline = Instant::now() + Duration::from_secs(20);
    while !has_last() && Instant::now() < write_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let written = has_last();
    rows.push(sidecar.memory().row(&format!("{routes} routes listed, cached and rendered")));
    sidecar.wait_for_statuses((routes + 2) as f64);
    rows.push(sidecar.memory().row("  and their statuses written"));
    let outcome = if written {
        format!("file written, {} bytes", sidecar.file_len())
    } else {
        let log = sidecar.log.lock().unwrap();
        let why = log.iter().find(|l| l.contains("ERROR")).map_or("?", |l| l.as_str());
        format!("NOT written: {}", why.chars().take(300).collect::<String>())
    };
    rows.push(format!("  (start to first render {rendered:.1?}; {outcome})"));
    sidecar.stop();
    rows
}

fn main() {
    // The fake API server: one worker, so the child keeps most of the machine.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let changes = env_number("BENCH_CHANGES", 200);
    let routes = env_number("BENCH_ROUTES", 1000);
    let memory_routes = env_number("BENCH_MEMORY_ROUTES", 10_000);
    if let Ok(routes) = std::env::var("BENCH_SERVE") {
        serve(&runtime, routes.parse().expect("BENCH_SERVE=number of routes"));
    }
    println!("binary: {}", bin());
    let mut memory = Vec::new();
    if only.is_empty() || only == "memory" {
        memory.extend(memory_baseline(&runtime));
        memory.extend(memory_by_list(&runtime, memory_routes));
    }
    if only.is_empty() || only == "latency" {
        let runs: Vec<Latency> =
            ["200ms", "0"].into_iter().map(|d| latency_run(&runtime, routes, changes, d)).collect();
        println!();
        println!(
            "event → file latency: {routes} HTTPRoutes ({} rules, {} bytes of config.yml), {changes} \
             single-route changes, one at a time",
            routes * 4,
            runs[0].bytes
        );
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>14}",
            "--debounce", "min", "p50", "p90", "p99", "max", "mean", "render (mean)"
        );
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
        for run in &runs {
            let s = &run.samples;
            let mean = s.iter().sum::<Duration>() / s.len() as u32;
            println!(
                "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>14}",
                run.debounce,
                ms(s[0]),
                ms(percentile(s, 50.0)),
                ms(percentile(s, 90.0)),
                ms(percentile(s, 99.0)),
                ms(s[s.len() - 1]),
                ms(mean),
                format!("{} ({:.0})", ms(run.render_mean), run.renders)
            );
        }
        println!("(render: translate + render + validate, the child's render_duration_seconds)");
        // After the baseline, before the larger run.
        for (n, run) in runs.iter().enumerate() {
            let what = format!("{routes} routes, after the changes (--debounce {})", run.debounce);
            memory.insert((1 + n).min(memory.len()), run.memory.row(&what));
        }
    }
    if !memory.is_empty() {
        println!();
        println!("resident memory of the `run` process (MiB, /proc/PID/status)");
        println!("{:<52} {:>7} {:>7} {:>7} {:>7}", "", "VmRSS", "RssAnon", "RssFile", "VmHWM");
        for row in memory {
            println!("{row}");
        }
    }
}

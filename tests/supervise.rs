//! `--reload supervise` against real processes: the stand-in cloudflared
//! (tests/fake_cloudflared/main.rs) behaves as DOMAIN.md §2 says, and logs what happens to it
//! in an event log whose line order is the order across processes.

#[path = "fake_cloudflared/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::{Arc, Mutex};

use cloudflared_routes::run::reload::{ConnectorEvent, ReloadError, Reloader, Supervisor};
use cloudflared_routes::run::supervise::{Backoff, ChildExit};
use cloudflared_routes::run::verify;
use harness::{config_yaml, fake_cloudflared, free_ports, loopback, EventLog};

const BOUND: Duration = Duration::from_secs(20);

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    log: EventLog,
    ports: [u16; 2],
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let log = EventLog::new(dir.path());
    let ports = free_ports(2);
    Setup { config, log, ports: [ports[0], ports[1]], _dir: dir }
}

/// A supervisor of the stand-in; `env` is extra environment for every child.
fn supervisor(setup: &Setup, env: &[(&str, &str)]) -> Supervisor {
    let argv =
        [fake_cloudflared().display().to_string(), "tunnel".into(), "--no-autoupdate".into(), "run".into()];
    let mut supervisor = Supervisor::new(&argv, &setup.config)
        .unwrap()
        .with_metrics([127, 0, 0, 1].into(), setup.ports)
        .with_ready_timeout(Duration::from_secs(10))
        .with_drain_timeout(Duration::from_secs(5))
        .with_env("FAKE_CF_EVENT_LOG", setup.log.path.display().to_string());
    for (key, value) in env {
        supervisor = supervisor.with_env(*key, *value);
    }
    supervisor
}

fn write(config: &Path, rules: &[(&str, &str)]) -> String {
    let yaml = config_yaml(rules);
    std::fs::write(config, &yaml).unwrap();
    yaml
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future).await.unwrap_or_else(|_| panic!("{what} took longer than {BOUND:?}"))
}

/// Whether the child on `port` shows `yaml`'s ingress on `/config` in its first answer: not
/// polled (a child reads its file once, at start), and that answer is waited for up to BOUND, as
/// a loaded machine may take a while to give it. `Err`: the difference, or why no answer came.
async fn runs_now(port: u16, yaml: &str) -> Result<(), String> {
    let expected = verify::rendered_rules(yaml).expect("a readable config");
    let loaded = verify::loaded_rules(loopback(port), BOUND).await?;
    verify::difference(&expected, &loaded).map_or(Ok(()), Err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_starts_a_ready_child_before_the_old_one_gets_sigterm() {
    let setup = setup();
    let mut supervisor = supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "300")]);
    let [a, b] = setup.ports;

    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.expect("first start");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(a)), "the first child takes the first port");
    assert!(verify::wait_ready(loopback(a), BOUND).await, "the first child becomes ready");

    let v2 = write(&setup.config, &[("v2.example.com", "http://v2:80")]);
    bounded("reload", supervisor.reload(&setup.config)).await.expect("reload to v2");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(b)), "the new child has the other port");
    runs_now(b, &v2).await.expect("the new child runs v2");
    bounded("drain", supervisor.wait_drained()).await;

    let v3 = write(&setup.config, &[("v3.example.com", "http://v3:80")]);
    bounded("reload", supervisor.reload(&setup.config)).await.expect("reload to v3");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(a)), "ports alternate");
    runs_now(a, &v3).await.expect("the third child runs v3");
    bounded("drain", supervisor.wait_drained()).await;

    let log = &setup.log;
    let starts = log.starts();
    let ports: Vec<String> = starts.iter().map(|(_, metrics)| metrics.clone()).collect();
    assert_eq!(ports, [loopback(a), loopback(b), loopback(a)].map(|p| p.to_string()), "{}", log.dump());
    for pair in starts.windows(2) {
        let (old, new) = (pair[0].0, pair[1].0);
        let ready = log.position(new, "ready").expect("the new child got ready");
        let sigterm = log.position(old, "sigterm").expect("the old child got SIGTERM");
        let exited = log.position(old, "exited code=0").expect("the old child drained and exited 0");
        assert!(ready < sigterm, "new {new} ready before old {old} got SIGTERM:\n{}", log.dump());
        assert!(sigterm < exited);
        assert!(!harness::process_exists(old), "the old child {old} was reaped");
    }
    assert!(!log.dump().contains("sighup"), "never SIGHUP:\n{}", log.dump());

    bounded("shutdown", supervisor.shutdown()).await;
    let last = starts[2].0;
    assert!(log.has(last, "sigterm") && log.has(last, "exited code=0"), "{}", log.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_child_slow_to_answer_is_kept_until_the_new_one_is_ready() {
    // A starved machine: each `/ready` answer takes 1.2 s. The serving child is ready all the
    // same, so it must serve until the new child has an edge connection (ready after 1 s),
    // not only until the new child shows the new config.
    let setup = setup();
    let env = [("FAKE_CF_READY_AFTER_MS", "1000"), ("FAKE_CF_READY_SLOW_MS", "1200")];
    let mut supervisor = supervisor(&setup, &env);
    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.expect("first start");
    assert!(verify::wait_ready(loopback(setup.ports[0]), BOUND).await, "the first child becomes ready");
    write(&setup.config, &[("v2.example.com", "http://v2:80")]);
    bounded("reload", supervisor.reload(&setup.config)).await.expect("reload to v2");
    bounded("drain", supervisor.wait_drained()).await;

    let log = &setup.log;
    let starts = log.starts();
    let (old, new) = (starts[0].0, starts[1].0);
    let ready = log.position(new, "ready").expect("the new child got ready");
    let sigterm = log.position(old, "sigterm").expect("the old child got SIGTERM");
    assert!(ready < sigterm, "new {new} ready before old {old} got SIGTERM:\n{}", log.dump());
    bounded("shutdown", supervisor.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_old_child_was_not_ready_reload_waits_for_the_new_config() {
    let setup = setup();
    // No edge reachable: no child ever gets ready.
    let mut supervisor = supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "never")]);
    let [a, b] = setup.ports;

    let v1 = write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.expect("first start serves v1");
    runs_now(a, &v1).await.expect("v1 on /config");

    let v2 =
        write(&setup.config, &[("v2.example.com", "http://v2:80"), ("api.example.com", "http://api:8080")]);
    bounded("reload", supervisor.reload(&setup.config)).await.expect("reload without readiness");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(b)));
    runs_now(b, &v2).await.expect("the new child shows v2 at once");
    bounded("drain", supervisor.wait_drained()).await;

    let log = &setup.log;
    let starts = log.starts();
    assert_eq!(starts.len(), 2, "{}", log.dump());
    assert!(log.position(starts[1].0, "started") < log.position(starts[0].0, "sigterm"));
    assert!(!log.dump().contains(" ready"), "nobody was ready:\n{}", log.dump());
    bounded("shutdown", supervisor.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_child_is_restarted_with_growing_back_off() {
    let setup = setup();
    let backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(5),
        reset_after: Duration::from_secs(60),
    };
    let mut supervisor =
        supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "50"), ("FAKE_CF_CRASH_AFTER_MS", "600")])
            .with_backoff(backoff);

    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.expect("the first start serves");
    let log = &setup.log;
    log.wait_for(BOUND, "four starts", |events| {
        events.iter().filter(|e| e.what.starts_with("started")).count() >= 4
    })
    .await;

    // The pause between a crash and the next start doubles: 200, 400, 800 ms.
    let events = log.events();
    let crashes: Vec<_> = events.iter().filter(|e| e.what == "exited code=1").collect();
    let starts: Vec<_> = events.iter().filter(|e| e.what.starts_with("started")).collect();
    let pauses: Vec<u128> =
        crashes.iter().zip(&starts[1..]).map(|(crash, next)| next.millis - crash.millis).collect();
    assert!(pauses.len() >= 3, "{}", log.dump());
    // Each pause is the back-off plus the time to see the exit and start the next process,
    // which a loaded machine only lengthens: so each is compared with its own back-off, not
    // with the pause before it (whose overhead may have been the larger). 10 ms of slack for
    // the log's millisecond timestamps.
    for (i, backoff) in [200, 400, 800].into_iter().enumerate() {
        assert!(pauses[i] + 10 >= backoff, "restart {} after at least {backoff} ms: {pauses:?}", i + 1);
    }
    // And it grows from a short start: a back-off stuck at its maximum (5 s) or fixed at any
    // value fails these (the latter most of the time); a 600 ms margin between the first and
    // the third leaves room for load.
    assert!(pauses[0] < 4000, "the first restart waited the maximum back-off: {pauses:?}");
    assert!(pauses[0] < pauses[2], "the back-off did not grow: {pauses:?}");
    let (port, status) = supervisor.current_child().expect("a current child");
    assert_eq!(port, setup.ports[0]);
    assert!(status.starts >= 4 && status.exits >= 3, "{status:?}");

    bounded("shutdown", supervisor.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_both_children() {
    let setup = setup();
    // A long grace period keeps the replaced child draining while shutdown starts (long enough
    // that a loaded machine does not end it before shutdown has signalled the other).
    let grace = Duration::from_secs(4);
    let grace_ms = grace.as_millis().to_string();
    let mut supervisor =
        supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "100"), ("FAKE_CF_GRACE_MS", &grace_ms)])
            .with_drain_timeout(BOUND);

    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.unwrap();
    assert!(verify::wait_ready(loopback(setup.ports[0]), BOUND).await);
    write(&setup.config, &[("v2.example.com", "http://v2:80")]);
    bounded("reload", supervisor.reload(&setup.config)).await.unwrap();

    let started = std::time::Instant::now();
    bounded("shutdown", supervisor.shutdown()).await;
    let log = &setup.log;
    let starts = log.starts();
    assert_eq!(starts.len(), 2, "{}", log.dump());
    for (pid, _) in &starts {
        assert!(log.has(*pid, "sigterm") && log.has(*pid, "exited code=0"), "{pid} drained:\n{}", log.dump());
        assert!(!harness::process_exists(*pid), "{pid} was reaped");
    }
    // At once: the serving child got its SIGTERM while the replaced one still drained, and
    // shutdown took one grace period, not one after the other.
    let (replaced, serving) = (starts[0].0, starts[1].0);
    assert!(
        log.position(serving, "sigterm") < log.position(replaced, "exited"),
        "the serving child was signalled only once the replaced one had drained:\n{}",
        log.dump()
    );
    assert!(started.elapsed() < grace * 2, "both drained at once: {:?}", started.elapsed());
    assert_eq!(supervisor.metrics_addr(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_does_not_drain_in_time_is_killed() {
    let setup = setup();
    // The drain timeout leaves the child time to hear (and log) its SIGTERM before the SIGKILL,
    // on a loaded machine too; its grace period is far longer.
    let mut supervisor =
        supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "50"), ("FAKE_CF_GRACE_MS", "60000")])
            .with_drain_timeout(Duration::from_secs(3));
    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.unwrap();
    bounded("shutdown", supervisor.shutdown()).await;
    let log = &setup.log;
    let pid = log.starts()[0].0;
    assert!(log.has(pid, "sigterm"), "{}", log.dump());
    assert!(!log.has(pid, "exited"), "killed, not exited:\n{}", log.dump());
    assert!(!harness::process_exists(pid), "killed and reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_the_new_child_refuses_leaves_the_old_one_serving() {
    let setup = setup();
    let mut supervisor = supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "50")]);
    let v1 = write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.unwrap();
    assert!(verify::wait_ready(loopback(setup.ports[0]), BOUND).await);

    // No ingress rules: the stand-in exits 1, as cloudflared refuses such a file.
    std::fs::write(&setup.config, "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n").unwrap();
    let err = bounded("reload", supervisor.reload(&setup.config)).await.unwrap_err();
    assert!(matches!(err, ReloadError::Spawn(_)), "{err:?}");
    assert!(err.to_string().contains("exited"), "{err}");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(setup.ports[0])), "the old child still serves");
    runs_now(setup.ports[0], &v1).await.expect("still v1");
    let log = &setup.log;
    let old = log.starts()[0].0;
    assert!(!log.has(old, "sigterm"), "the old child was left alone:\n{}", log.dump());
    bounded("shutdown", supervisor.shutdown()).await;
}

/// Restarts after 1 s, doubling: the tests act between an exit they heard of and the restart
/// after it (remove the file that makes children fail), which on a loaded machine may take more
/// than the few hundred milliseconds a quicker back-off would leave.
const QUICK: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(5),
    reset_after: Duration::from_secs(60),
};

/// Every exit the supervisor's hook is told of, in order.
fn exits(supervisor: Supervisor) -> (Supervisor, Arc<Mutex<Vec<ChildExit>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (supervisor.with_exit_hook(Arc::new(move |how| sink.lock().unwrap().push(how))), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_childs_exits_and_restarts_are_reported_and_every_exit_counted() {
    let setup = setup();
    let failing = setup.config.with_file_name("revoked");
    let failing_env = failing.display().to_string();
    let supervisor =
        supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "50"), ("FAKE_CF_FAIL_IF_EXISTS", &failing_env)])
            .with_backoff(QUICK);
    let (mut supervisor, exits) = exits(supervisor);
    write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    bounded("first start", supervisor.reload(&setup.config)).await.unwrap();
    assert!(verify::wait_ready(loopback(setup.ports[0]), BOUND).await);
    let v2 = write(&setup.config, &[("v2.example.com", "http://v2:80")]);
    bounded("reload", supervisor.reload(&setup.config)).await.unwrap();
    bounded("drain", supervisor.wait_drained()).await;
    assert_eq!(*exits.lock().unwrap(), [ChildExit::Stopped], "the replaced child was stopped");
    let quiet = tokio::time::timeout(Duration::from_millis(300), supervisor.connector_event()).await;
    assert!(quiet.is_err(), "nothing happened to the serving child: {quiet:?}");

    // The tunnel is revoked and the serving child dies: every restart exits 1.
    std::fs::write(&failing, "").unwrap();
    let (_, status) = supervisor.current_child().unwrap();
    let pid = nix::unistd::Pid::from_raw(status.pid.unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let event = bounded("the exit", supervisor.connector_event()).await;
    assert!(matches!(&event, ConnectorEvent::Exited(how) if how.contains("signal: 9")), "{event:?}");
    // The restart, then its exit; or only the exit, when the child was already gone by the time
    // this task looked (a loaded machine): a start whose child is gone is not reported, there
    // is nothing left to verify (`Keeper::next_event`).
    let mut event = bounded("a restart or its exit", supervisor.connector_event()).await;
    if event == ConnectorEvent::Restarted {
        event = bounded("its exit", supervisor.connector_event()).await;
    }
    assert_eq!(event, ConnectorEvent::Exited("exited with exit status: 1".to_string()));

    // The tunnel works again: the next restart serves the file on disk.
    std::fs::remove_file(&failing).unwrap();
    assert_eq!(bounded("a restart", supervisor.connector_event()).await, ConnectorEvent::Restarted);
    verify::verify(loopback(setup.ports[1]), &v2, BOUND).await.expect("it runs v2");
    let unexpected = exits.lock().unwrap().iter().filter(|e| **e == ChildExit::Unexpected).count();
    assert_eq!(unexpected, 2, "the crash and the failed restart: {:?}", exits.lock().unwrap());

    bounded("shutdown", supervisor.shutdown()).await;
    assert_eq!(exits.lock().unwrap().last(), Some(&ChildExit::Stopped), "drained at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_child_that_failed_reports_its_restart() {
    let setup = setup();
    let failing = setup.config.with_file_name("revoked");
    std::fs::write(&failing, "").unwrap();
    let failing_env = failing.display().to_string();
    let mut supervisor =
        supervisor(&setup, &[("FAKE_CF_READY_AFTER_MS", "50"), ("FAKE_CF_FAIL_IF_EXISTS", &failing_env)])
            .with_backoff(QUICK);
    let v1 = write(&setup.config, &[("v1.example.com", "http://v1:80")]);
    let err = bounded("first start", supervisor.reload(&setup.config)).await.unwrap_err();
    assert!(matches!(err, ReloadError::Spawn(_)), "{err:?}");

    // The failure was reported by the reload; what comes after it is news. (The file goes
    // long before the first restart, 1 s after the exit.)
    std::fs::remove_file(&failing).unwrap();
    assert_eq!(bounded("a restart", supervisor.connector_event()).await, ConnectorEvent::Restarted);
    verify::verify(loopback(setup.ports[0]), &v1, BOUND).await.expect("it runs v1");
    bounded("shutdown", supervisor.shutdown()).await;
}

#[test]
fn free_ports_are_held_against_other_test_processes() {
    // Another process opens the port's lock file on its own: its lock must be refused while
    // this process runs (a second open file here stands for it: flock locks conflict between
    // open files, whichever process holds them).
    let ports = free_ports(2);
    assert_ne!(ports[0], ports[1]);
    for port in ports {
        let lock = std::env::temp_dir().join("cloudflared-routes-test-ports").join(port.to_string());
        let other = std::fs::File::open(&lock).expect("the port's lock file");
        assert!(other.try_lock().is_err(), "port {port} is not held");
    }
}

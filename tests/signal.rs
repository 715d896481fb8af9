//! `--reload signal` against a real process: the stand-in cloudflared runs as a separate
//! process under a small "kubelet" (this test) that starts it again whenever it exits, the way
//! the kubelet restarts a container of the pod. Replicas take turns through a Lease on the fake
//! API server.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "fake_cloudflared/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloudflared_routes::run::leader::LeaderElectionOptions;
use cloudflared_routes::run::reload::{ReloadError, Reloader, Signaller, Turn};
use cloudflared_routes::run::signal::{LeaseTurn, LeaseTurnOptions};
use fake_apiserver::objects::CONTROLLER;
use fake_apiserver::FakeApiServer;
use harness::{config_yaml, fake_cloudflared, free_ports, loopback, EventLog};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const BOUND: Duration = Duration::from_secs(20);

/// Runs `bin … run` and restarts it 200 ms after every exit, until dropped (then kills it).
struct Kubelet {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Kubelet {
    fn start(
        bin: PathBuf,
        config: &Path,
        port: u16,
        pidfile: &Path,
        log: &EventLog,
        restart: bool,
    ) -> Kubelet {
        let (stop_tx, mut stop) = oneshot::channel::<()>();
        let mut command = tokio::process::Command::new(bin);
        command
            .arg("tunnel")
            .arg("--config")
            .arg(config)
            .arg("--metrics")
            .arg(loopback(port).to_string())
            .arg("--pidfile")
            .arg(pidfile)
            .arg("run")
            .env("FAKE_CF_EVENT_LOG", &log.path)
            .env("FAKE_CF_READY_AFTER_MS", "300")
            .env("FAKE_CF_GRACE_MS", "200")
            .kill_on_drop(true);
        let task = tokio::spawn(async move {
            loop {
                let mut child = command.spawn().expect("the stand-in starts");
                tokio::select! {
                    _ = child.wait() => {}
                    _ = &mut stop => return,
                }
                if !restart {
                    let _ = stop.await;
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = &mut stop => return,
                }
            }
        });
        Kubelet { stop: Some(stop_tx), task: Some(task) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    pidfile: PathBuf,
    log: EventLog,
    port: u16,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, config_yaml(&[("v1.example.com", "http://v1:80")])).unwrap();
    Setup {
        config,
        pidfile: dir.path().join("cloudflared.pid"),
        log: EventLog::new(dir.path()),
        port: free_ports(1)[0],
        dir,
    }
}

/// Waits until the first stand-in is ready and has written its pidfile.
async fn first_ready(setup: &Setup) -> u32 {
    setup
        .log
        .wait_for(BOUND, "the first start to be ready", |events| events.iter().any(|e| e.what == "ready"))
        .await;
    setup.log.events().iter().find(|e| e.what == "ready").unwrap().pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_by_pidfile_then_ready_again_after_the_restart() {
    let setup = setup();
    let kubelet =
        Kubelet::start(fake_cloudflared(), &setup.config, setup.port, &setup.pidfile, &setup.log, true);
    let old = first_ready(&setup).await;

    let mut signaller = Signaller::new(Duration::from_secs(10))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port))
        .with_process_name("no-such-process-name");
    std::fs::write(&setup.config, config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    tokio::time::timeout(BOUND, signaller.reload(&setup.config))
        .await
        .expect("bounded")
        .expect("ready again");

    let log = &setup.log;
    assert!(log.has(old, "sigterm"), "the old cloudflared got SIGTERM:\n{}", log.dump());
    assert!(!log.dump().contains("sighup"), "never SIGHUP:\n{}", log.dump());
    let starts = log.starts();
    assert_eq!(starts.len(), 2, "restarted once:\n{}", log.dump());
    let new = starts[1].0;
    assert_ne!(new, old);
    assert!(log.has(new, "ready"), "reload returned once the restarted one was ready:\n{}", log.dump());
    assert!(log.position(old, "exited") < log.position(new, "ready"));
    let v2 = config_yaml(&[("v2.example.com", "http://v2:80")]);
    // The restarted process read its file once: polling longer cannot make another file show.
    cloudflared_routes::run::verify::verify(loopback(setup.port), &v2, BOUND)
        .await
        .expect("the restart read the new file");
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proc_scan_finds_cloudflared_by_name() {
    let setup = setup();
    // A copy under a name no other process has, so the scan cannot hit anything else.
    let name = format!("fakecf-{}", std::process::id());
    let bin = setup.dir.path().join(&name);
    std::fs::copy(fake_cloudflared(), &bin).unwrap();
    let kubelet = Kubelet::start(bin, &setup.config, setup.port, &setup.pidfile, &setup.log, true);
    let old = first_ready(&setup).await;

    let mut signaller = Signaller::new(Duration::from_secs(10)).with_process_name(&name);
    assert_eq!(signaller.find().unwrap(), vec![old as i32], "found by /proc scan");
    // The metrics address comes from the config's `metrics:` key when not given (the pipeline
    // reads it from what it rendered and tells the reloader).
    let config =
        format!("metrics: 0.0.0.0:{}\n{}", setup.port, config_yaml(&[("v2.example.com", "http://v2:80")]));
    std::fs::write(&setup.config, &config).unwrap();
    signaller.use_config_metrics(cloudflared_routes::run::reload::metrics_from_config(&config));
    tokio::time::timeout(BOUND, signaller.reload(&setup.config))
        .await
        .expect("bounded")
        .expect("ready again");
    assert_eq!(signaller.metrics_addr(), Some(loopback(setup.port)));
    assert!(setup.log.has(old, "sigterm"), "{}", setup.log.dump());
    assert_eq!(setup.log.starts().len(), 2, "{}", setup.log.dump());
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudflared_that_does_not_come_back_is_not_ready() {
    let setup = setup();
    let kubelet =
        Kubelet::start(fake_cloudflared(), &setup.config, setup.port, &setup.pidfile, &setup.log, false);
    let old = first_ready(&setup).await;
    // A new file: a cloudflared already running the file is not restarted at all.
    std::fs::write(&setup.config, config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let mut signaller = Signaller::new(Duration::from_millis(1500))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port));
    let err =
        tokio::time::timeout(BOUND, signaller.reload(&setup.config)).await.expect("bounded").unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "{err:?}");
    // The stand-in logs the SIGTERM when it handles it, which a loaded machine may put off
    // past the 1.5 s ready timeout.
    setup
        .log
        .wait_for(BOUND, "the SIGTERM", |events| events.iter().any(|e| e.pid == old && e.what == "sigterm"))
        .await;
    kubelet.stop().await;
}

#[tokio::test]
async fn no_cloudflared_is_an_error_and_nothing_is_signalled() {
    let setup = setup();
    let mut signaller = Signaller::new(Duration::from_secs(1))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port))
        .with_process_name("no-such-process-name");
    // The first reload waits for a cloudflared that may not have started yet, up to the
    // ready timeout; after that, a missing cloudflared is an error at once.
    let err = signaller.reload(&setup.config).await.unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "{err:?}");
    let err = signaller.reload(&setup.config).await.unwrap_err();
    assert!(matches!(err, ReloadError::NoProcess(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reload_waits_for_a_cloudflared_that_starts_later() {
    // A native sidecar: cloudflared-routes writes the first config before the kubelet starts
    // cloudflared, which then reads it by itself: nothing to signal, only to wait for.
    let setup = setup();
    let mut signaller = Signaller::new(Duration::from_secs(10))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port))
        .with_process_name("no-such-process-name");
    let config = setup.config.clone();
    let reload = tokio::spawn(async move { signaller.reload(&config).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reload.is_finished(), "the first reload waits for cloudflared to start");
    let kubelet =
        Kubelet::start(fake_cloudflared(), &setup.config, setup.port, &setup.pidfile, &setup.log, true);
    tokio::time::timeout(BOUND, reload).await.expect("bounded").expect("no panic").expect("ready");
    assert!(!setup.log.dump().contains("sigterm"), "nothing to restart:\n{}", setup.log.dump());
    assert_eq!(setup.log.starts().len(), 1, "{}", setup.log.dump());
    kubelet.stop().await;
}

const LEASES: &str = "coordination.k8s.io/v1";

/// The restart turn of replica `identity` in namespace `infra`, with a `lease` duration, polled
/// every 50 to 100 ms.
fn turn_options(identity: &str, lease: Duration) -> LeaseTurnOptions {
    let leader = LeaderElectionOptions::new("infra", CONTROLLER, identity, lease);
    LeaseTurnOptions {
        poll_min: Duration::from_millis(50),
        poll_max: Duration::from_millis(100),
        ..LeaseTurnOptions::new(&leader, BOUND)
    }
}

fn holder(server: &FakeApiServer, name: &str) -> serde_json::Value {
    let lease = server.get(LEASES, "Lease", "infra", name).expect("the restart Lease exists");
    lease["spec"]["holderIdentity"].clone()
}

/// `turn.take()` in a task; it answers when the turn was taken.
fn take_later(turn: &Arc<LeaseTurn>) -> JoinHandle<Result<Instant, ReloadError>> {
    let turn = turn.clone();
    tokio::spawn(async move { turn.take().await.map(|()| Instant::now()) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_restart_one_after_the_other() {
    let server = FakeApiServer::start().await;
    let setup = setup();
    let ports = free_ports(2);
    let pidfiles = [setup.dir.path().join("a.pid"), setup.dir.path().join("b.pid")];
    // Two pods' cloudflareds, logging to one file: its order is the order of events.
    let kubelets: Vec<Kubelet> = (0..2)
        .map(|i| Kubelet::start(fake_cloudflared(), &setup.config, ports[i], &pidfiles[i], &setup.log, true))
        .collect();
    setup
        .log
        .wait_for(BOUND, "both to be ready", |events| {
            events.iter().filter(|e| e.what == "ready").count() == 2
        })
        .await;

    // A 2 s lease, while each restart takes about a second: renewed, never lapsed.
    let lease = Duration::from_secs(2);
    let replica = |i: usize, identity: &str| {
        Signaller::new(Duration::from_secs(10))
            .with_pidfile(pidfiles[i].clone())
            .with_metrics(loopback(ports[i]))
            .with_process_name("no-such-process-name")
            .with_turn(Box::new(LeaseTurn::new(server.client(), turn_options(identity, lease))))
    };
    let (mut a, mut b) = (replica(0, "pod-a"), replica(1, "pod-b"));
    std::fs::write(&setup.config, config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let (done_a, done_b) =
        tokio::time::timeout(BOUND, async { tokio::join!(a.reload(&setup.config), b.reload(&setup.config)) })
            .await
            .expect("bounded");
    done_a.expect("a ready again");
    done_b.expect("b ready again");

    let log = &setup.log;
    let starts = log.starts();
    assert_eq!(starts.len(), 4, "each restarted once:\n{}", log.dump());
    let of_port = |port: u16| -> Vec<u32> {
        let metrics = loopback(port).to_string();
        starts.iter().filter(|(_, m)| *m == metrics).map(|(pid, _)| *pid).collect()
    };
    let (pids_a, pids_b) = (of_port(ports[0]), of_port(ports[1]));
    let (first, second) = if log.position(pids_a[0], "sigterm") < log.position(pids_b[0], "sigterm") {
        (pids_a, pids_b)
    } else {
        (pids_b, pids_a)
    };
    let (first_ready, second_sigterm) = (log.position(first[1], "ready"), log.position(second[0], "sigterm"));
    assert!(first_ready.is_some() && second_sigterm.is_some(), "{}", log.dump());
    assert!(
        second_sigterm > first_ready,
        "the second SIGTERM came after the first restart was ready:\n{}",
        log.dump()
    );
    let at = |pid: u32, what: &str| {
        log.events().into_iter().find(|e| e.pid == pid && e.what == what).unwrap().millis
    };
    assert!(at(second[0], "sigterm") >= at(first[1], "ready"), "{}", log.dump());
    assert!(!log.dump().contains("sighup"), "never SIGHUP:\n{}", log.dump());

    let name = turn_options("pod-a", lease).lease_name;
    assert!(name.ends_with("-restart"), "{name}");
    assert!(holder(&server, &name).is_null(), "released after the last restart");
    assert!(server.requests().iter().any(|r| r.method == "PUT" && r.path.ends_with(&name)), "renewed by PUT");
    for kubelet in kubelets {
        kubelet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_turn_is_taken_over_once_it_expires() {
    let server = FakeApiServer::start().await;
    let lease = Duration::from_secs(2);
    let a = LeaseTurn::new(server.client(), turn_options("pod-a", lease));
    tokio::time::timeout(BOUND, a.take()).await.expect("bounded").expect("a free Lease is taken");
    let b = Arc::new(LeaseTurn::new(server.client(), turn_options("pod-b", lease)));
    let waiting = take_later(&b);

    // A holder whose restart outlasts its lease renews it: nobody else goes meanwhile.
    tokio::time::sleep(lease * 3 / 2).await;
    assert!(!waiting.is_finished(), "pod-b went while pod-a was restarting");
    let name = turn_options("pod-a", lease).lease_name;
    assert_eq!(holder(&server, &name), "pod-a");

    // pod-a dies mid-restart: no release, no more renewals.
    drop(a);
    let died = Instant::now();
    let taken = tokio::time::timeout(BOUND, waiting).await.expect("bounded").unwrap().expect("taken");
    // Its last renewal is at most a renew period (lease / 3) before its death.
    let waited = taken - died;
    assert!(
        waited >= lease * 2 / 3 - Duration::from_millis(100),
        "taken over after {waited:?}, before expiry"
    );
    assert_eq!(holder(&server, &name), "pod-b");
    b.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_lets_the_next_replica_go_at_once() {
    let server = FakeApiServer::start().await;
    // A long lease: whatever lets pod-b go within a second, it is not expiry.
    let lease = Duration::from_secs(30);
    let a = LeaseTurn::new(server.client(), turn_options("pod-a", lease));
    a.take().await.expect("taken");
    let b = Arc::new(LeaseTurn::new(server.client(), turn_options("pod-b", lease)));
    let waiting = take_later(&b);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "pod-b went while pod-a held the turn");

    a.release().await;
    let released = Instant::now();
    let name = turn_options("pod-a", lease).lease_name;
    let taken = tokio::time::timeout(BOUND, waiting).await.expect("bounded").unwrap().expect("taken");
    // Well below the 30 s lease (expiry), whatever the load on the machine.
    assert!(
        taken - released < Duration::from_secs(10),
        "pod-b waited {:?} after the release",
        taken - released
    );
    assert_eq!(holder(&server, &name), "pod-b");
    let stored = server.get(LEASES, "Lease", "infra", &name).unwrap();
    assert_eq!(stored["spec"]["leaseTransitions"], 1, "{stored}");
    b.release().await;
    assert!(holder(&server, &name).is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_delays_the_restart_but_never_blocks_it() {
    // A loopback port nobody listens on.
    let port = free_ports(1)[0];
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap()))
            .expect("client");
    let opts = LeaseTurnOptions {
        unreachable_after: Duration::from_millis(600),
        ..turn_options("pod-a", Duration::from_secs(1))
    };
    let turn = LeaseTurn::new(client, opts);
    let started = Instant::now();
    tokio::time::timeout(BOUND, turn.take()).await.expect("bounded").expect("goes without a turn");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(600), "went after {waited:?}, without waiting");
    // Well below the max wait (BOUND), whatever the load on the machine.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // Nothing is held, so nothing is given back (and nothing hangs).
    tokio::time::timeout(Duration::from_secs(10), turn.release()).await.expect("release is immediate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_ends_at_the_max_wait_or_when_run_stops() {
    let server = FakeApiServer::start().await;
    let lease = Duration::from_secs(30);
    let a = LeaseTurn::new(server.client(), turn_options("pod-a", lease));
    a.take().await.expect("taken");
    let name = turn_options("pod-a", lease).lease_name;

    let patient = LeaseTurnOptions { max_wait: Duration::from_millis(800), ..turn_options("pod-b", lease) };
    let b = LeaseTurn::new(server.client(), patient);
    let started = Instant::now();
    tokio::time::timeout(BOUND, b.take()).await.expect("bounded").expect("goes without a turn");
    let waited = started.elapsed();
    // At the 800 ms max wait, well before the 30 s lease expires, whatever the load.
    assert!(waited >= Duration::from_millis(600) && waited < Duration::from_secs(10), "waited {waited:?}");
    b.release().await;
    assert_eq!(holder(&server, &name), "pod-a", "going without a turn takes nothing from the holder");

    let (stop, stopping) = watch::channel(false);
    let c = Arc::new(LeaseTurn::new(server.client(), turn_options("pod-c", lease)).with_shutdown(stopping));
    let waiting = take_later(&c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send_replace(true);
    // Well before its max wait (BOUND) would end it.
    let stopped =
        tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("stops waiting").unwrap();
    assert!(matches!(stopped, Err(ReloadError::Other(_))), "{stopped:?}");
    assert_eq!(holder(&server, &name), "pod-a");
}

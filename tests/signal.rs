//! `--reload signal` against a real process: the stand-in cloudflared runs as a separate
//! process under a small "kubelet" (this test) that starts it again whenever it exits, the way
//! the kubelet restarts a container of the pod.

#[path = "fake_cloudflared/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudflared_routes::run::reload::{ReloadError, Reloader, Signaller};
use harness::{config_yaml, fake_cloudflared, free_ports, loopback, EventLog};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
    cloudflared_routes::run::verify::verify(loopback(setup.port), &v2, Duration::from_secs(1))
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
    // The metrics address comes from the config's `metrics:` key when not given.
    let config =
        format!("metrics: 0.0.0.0:{}\n{}", setup.port, config_yaml(&[("v2.example.com", "http://v2:80")]));
    std::fs::write(&setup.config, config).unwrap();
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
    let mut signaller = Signaller::new(Duration::from_millis(1500))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port));
    let err =
        tokio::time::timeout(BOUND, signaller.reload(&setup.config)).await.expect("bounded").unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "{err:?}");
    assert!(setup.log.has(old, "sigterm"), "{}", setup.log.dump());
    kubelet.stop().await;
}

#[tokio::test]
async fn no_cloudflared_is_an_error_and_nothing_is_signalled() {
    let setup = setup();
    let mut signaller = Signaller::new(Duration::from_secs(1))
        .with_pidfile(setup.pidfile.clone())
        .with_metrics(loopback(setup.port))
        .with_process_name("no-such-process-name");
    let err = signaller.reload(&setup.config).await.unwrap_err();
    assert!(matches!(err, ReloadError::NoProcess(_)), "{err:?}");
}

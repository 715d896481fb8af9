use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// A `sleep` child killed on drop, so a failing test leaks nothing.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("30").spawn().expect("sleep runs"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn scan_finds_a_process_by_name_and_never_itself() {
    let sleeper = Sleeper::start();
    let found = scan(Path::new("/proc"), "sleep");
    assert!(found.contains(&sleeper.pid()), "{found:?} holds {}", sleeper.pid());
    let own = std::process::id() as i32;
    let own_name = std::env::current_exe().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(!scan(Path::new("/proc"), &own_name).contains(&own), "this process is never a match");
    assert!(scan(Path::new("/proc"), "no-such-process-name").is_empty());
}

#[test]
fn zombies_are_not_alive() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    // Exited but not yet reaped: a zombie that still answers kill(pid, 0).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while state(Path::new("/proc"), pid) != Some('Z') {
        assert!(std::time::Instant::now() < deadline, "`true` never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(Path::new("/proc"), pid), "a zombie is not a running cloudflared");
    child.wait().unwrap();
    assert!(!alive(Path::new("/proc"), pid), "a reaped process is gone");
}

#[test]
fn pidfile_wins_and_a_stale_one_falls_back_to_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("cloudflared.pid");
    let sleeper = Sleeper::start();

    std::fs::write(&pidfile, format!("{}\n", sleeper.pid())).unwrap();
    let signaller = Signaller::new(Duration::from_secs(1))
        .with_pidfile(pidfile.clone())
        .with_process_name("no-such-process-name");
    assert_eq!(signaller.find().unwrap(), vec![sleeper.pid()], "the pidfile's process");

    // A pid that cannot be running (above the kernel's pid_max).
    std::fs::write(&pidfile, "2147483646").unwrap();
    let signaller = signaller.with_process_name("sleep");
    assert!(signaller.find().unwrap().contains(&sleeper.pid()), "a stale pidfile falls back to /proc");

    let err = signaller.with_process_name("no-such-process-name").find().unwrap_err();
    assert!(matches!(err, ReloadError::NoProcess(_)), "{err:?}");
    assert!(err.to_string().contains("shareProcessNamespace"), "{err}");
}

#[test]
fn pidfile_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    std::fs::write(&pidfile, "not a pid").unwrap();
    let err = read_pidfile(&pidfile).unwrap_err();
    assert!(err.contains("does not hold a pid"), "{err}");
    assert!(read_pidfile(&dir.path().join("missing")).unwrap_err().contains("cannot read"));
}

#[tokio::test]
async fn no_metrics_address_is_an_error_before_any_signal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "ingress:\n  - service: http_status:404\n").unwrap();
    let mut signaller = Signaller::new(Duration::from_secs(1)).with_process_name("no-such-process-name");
    let err = signaller.reload(&config).await.unwrap_err();
    assert!(err.to_string().contains("--cloudflared-metrics"), "{err}");
}

#[tokio::test]
async fn metrics_address_comes_from_the_config_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "metrics: 0.0.0.0:2000\ningress:\n  - service: http_status:404\n").unwrap();
    let from_config: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    let mut signaller = Signaller::new(Duration::from_millis(10)).with_process_name("no-such-process-name");
    signaller.use_config_metrics(Some(from_config));
    // The first reload waits (here 10 ms) for a cloudflared that may not have started yet.
    let err = signaller.reload(&config).await.unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "{err:?}");
    assert_eq!(signaller.metrics_addr(), Some(from_config));

    let given: SocketAddr = "127.0.0.1:3000".parse().unwrap();
    let mut signaller = Signaller::new(Duration::from_millis(10))
        .with_process_name("no-such-process-name")
        .with_metrics(given);
    signaller.use_config_metrics(Some(from_config));
    let _ = signaller.reload(&config).await;
    assert_eq!(signaller.metrics_addr(), Some(given), "the flag wins over the config");
}

#[test]
fn the_restart_lease_sits_beside_the_leader_lease() {
    let leader = LeaderElectionOptions::new(
        "infra",
        "cloudflared-routes/gateway-controller",
        "pod-a",
        Duration::from_secs(15),
    );
    let opts = LeaseTurnOptions::new(&leader, Duration::from_secs(600));
    assert_eq!(opts.lease_name, format!("{}-restart", leader.lease_name));
    assert_ne!(opts.lease_name, leader.lease_name, "taking a turn never touches leadership");
    assert!(opts.lease_name.len() <= 253, "a DNS subdomain, as Lease names are");
    assert_eq!((opts.namespace.as_str(), opts.identity.as_str()), ("infra", "pod-a"));
    assert_eq!(opts.max_wait, Duration::from_secs(600));
}

#[test]
fn turn_timing_follows_the_lease_duration() {
    let leader = LeaderElectionOptions::new("ns", "c", "me", Duration::from_secs(15));
    let opts = LeaseTurnOptions::new(&leader, Duration::from_secs(600));
    assert_eq!(opts.renew_period, Duration::from_secs(5), "renewed three times per duration");
    assert_eq!(opts.attempt_timeout, Duration::from_secs(5));
    assert_eq!((opts.poll_min, opts.poll_max), (Duration::from_millis(500), Duration::from_secs(2)));
    assert_eq!(opts.unreachable_after, Duration::from_secs(15));
    // Tiny durations (tests) keep a floor, so nothing spins.
    let fast = LeaseTurnOptions::new(
        &LeaderElectionOptions::new("ns", "c", "me", Duration::from_millis(300)),
        Duration::ZERO,
    );
    assert!(fast.poll_min >= Duration::from_millis(50) && fast.poll_min <= fast.poll_max);
    assert!(fast.renew_period < fast.lease_duration);
}

#[test]
fn stagger_flags_default_to_a_lease_and_can_be_turned_off() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        stagger: StaggerOptions,
    }
    let default = Cli::try_parse_from(["run"]).unwrap().stagger;
    assert_eq!(default.stagger, Stagger::Lease);
    assert_eq!(default.stagger_max_wait, StaggerOptions::default().stagger_max_wait);
    let off = Cli::try_parse_from(["run", "--stagger", "none", "--stagger-max-wait", "2m"]).unwrap().stagger;
    assert_eq!((off.stagger, off.stagger_max_wait), (Stagger::None, Duration::from_secs(120)));
    assert!(Cli::try_parse_from(["run", "--stagger", "sometimes"]).is_err());
}

// ---- the first reload, and SIGTERM during a restart, against the stand-in cloudflared ----

use crate::run::fake_cloudflared as harness;

use harness::{config_yaml, loopback, EventLog};

/// Far above any wait these tests expect.
const BOUND: Duration = Duration::from_secs(60);

/// A [`Turn`] that records what it was asked.
#[derive(Clone, Default)]
struct RecordingTurn(Arc<Mutex<Vec<&'static str>>>);

impl RecordingTurn {
    fn calls(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

impl Turn for RecordingTurn {
    fn take(&self) -> BoxFuture<'_, Result<(), ReloadError>> {
        self.0.lock().unwrap().push("take");
        Box::pin(async { Ok(()) })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        self.0.lock().unwrap().push("release");
        Box::pin(async {})
    }
}

/// cloudflared in its own container: the stand-in on `config`, not restarted when it exits.
struct Pod {
    dir: tempfile::TempDir,
    config: PathBuf,
    pidfile: PathBuf,
    log: EventLog,
    metrics: SocketAddr,
    _cloudflared: tokio::process::Child,
}

impl Pod {
    /// Starts it on `config_yaml` and waits until it is ready.
    async fn start(config: &str) -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let (path, pidfile, log) =
            (dir.path().join("config.yml"), dir.path().join("pid"), EventLog::new(dir.path()));
        std::fs::write(&path, config).unwrap();
        let metrics = loopback(harness::free_ports(1)[0]);
        let cloudflared = tokio::process::Command::new(harness::fake_cloudflared())
            .args(["tunnel", "--config"])
            .arg(&path)
            .args(["--metrics", &metrics.to_string(), "--pidfile"])
            .arg(&pidfile)
            .arg("run")
            .env("FAKE_CF_EVENT_LOG", &log.path)
            .env("FAKE_CF_READY_AFTER_MS", "100")
            .kill_on_drop(true)
            .spawn()
            .expect("the stand-in starts");
        log.wait_for(BOUND, "cloudflared to be ready", |events| events.iter().any(|e| e.what == "ready"))
            .await;
        Pod { dir, config: path, pidfile, log, metrics, _cloudflared: cloudflared }
    }

    /// A signaller of this pod's cloudflared (by pid file), taking turns through `turn`.
    fn signaller(&self, ready_timeout: Duration, turn: &RecordingTurn) -> Signaller {
        Signaller::new(ready_timeout)
            .with_pidfile(self.pidfile.clone())
            .with_metrics(self.metrics)
            .with_process_name("no-such-process-name")
            .with_turn(Box::new(turn.clone()))
    }

    fn sigtermed(&self) -> bool {
        self.log.dump().contains(" sigterm")
    }

    /// Waits until the stand-in logged a SIGTERM: it logs it when it handles the signal, which
    /// a loaded machine may put off past the end of a short ready timeout.
    async fn wait_sigtermed(&self, what: &str) {
        self.log.wait_for(BOUND, what, |events| events.iter().any(|e| e.what == "sigterm")).await;
    }

    fn set_config_mtime(&self, mtime: std::time::SystemTime) {
        let file = std::fs::File::options().write(true).open(&self.config).unwrap();
        file.set_modified(mtime).unwrap();
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reload_leaves_a_cloudflared_that_runs_the_file_alone() {
    let pod = Pod::start(&config_yaml(&[("v1.example.com", "http://v1:80")])).await;
    let turn = RecordingTurn::default();
    let mut signaller = pod.signaller(Duration::from_secs(2), &turn);
    timeout(BOUND, signaller.reload(&pod.config)).await.unwrap().expect("it runs the file already");
    assert!(!pod.sigtermed(), "not restarted:\n{}", pod.log.dump());
    assert!(turn.calls().is_empty(), "no turn taken for nothing: {:?}", turn.calls());

    // Later reloads follow a write: they restart (here nothing brings it back: NotReady).
    let err = timeout(BOUND, signaller.reload(&pod.config)).await.unwrap().unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "{err:?}");
    pod.wait_sigtermed("the restart's SIGTERM").await;
    assert_eq!(turn.calls(), ["take", "release"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reload_restarts_a_cloudflared_that_runs_another_file() {
    let pod = Pod::start(&config_yaml(&[("v1.example.com", "http://v1:80")])).await;
    std::fs::write(&pod.config, config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let turn = RecordingTurn::default();
    let mut signaller = pod.signaller(Duration::from_secs(2), &turn);
    let err = timeout(BOUND, signaller.reload(&pod.config)).await.unwrap().unwrap_err();
    assert!(matches!(err, ReloadError::NotReady(_)), "nothing restarts it here: {err:?}");
    pod.wait_sigtermed("the restart's SIGTERM").await;
    assert_eq!(turn.calls(), ["take", "release"], "a turn around the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_config_a_cloudflared_started_after_the_write_is_left_alone() {
    let pod = Pod::start(&config_yaml(&[("v1.example.com", "http://v1:80")])).await;
    // Nobody listens there: /config cannot be read, only the start time tells.
    let unreachable = loopback(harness::free_ports(1)[0]);
    let turn = RecordingTurn::default();

    pod.set_config_mtime(std::time::SystemTime::now() - HOUR);
    let mut signaller = pod.signaller(Duration::from_millis(500), &turn).with_metrics(unreachable);
    // Left alone (the pipeline's verification then looks at /config again).
    timeout(BOUND, signaller.reload(&pod.config)).await.unwrap().expect("it read the file");
    assert!(!pod.sigtermed(), "it started after the write: not restarted\n{}", pod.log.dump());
    assert!(turn.calls().is_empty(), "{:?}", turn.calls());

    pod.set_config_mtime(std::time::SystemTime::now() + HOUR);
    let mut signaller = pod.signaller(Duration::from_millis(500), &turn).with_metrics(unreachable);
    let _ = timeout(BOUND, signaller.reload(&pod.config)).await.unwrap();
    pod.wait_sigtermed("the file is newer than the process: restarted").await;
    assert_eq!(turn.calls(), ["take", "release"]);
    drop(pod.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_restart_gives_up_and_releases_the_turn() {
    let pod = Pod::start(&config_yaml(&[("v1.example.com", "http://v1:80")])).await;
    std::fs::write(&pod.config, config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let turn = RecordingTurn::default();
    // Nothing restarts it: the reload would wait the whole ready timeout.
    let mut signaller = pod.signaller(Duration::from_secs(600), &turn);
    let (stop, stopping) = watch::channel(false);
    signaller.watch_shutdown(stopping);
    let sigterm = async {
        pod.log.wait_for(BOUND, "the SIGTERM", |events| events.iter().any(|e| e.what == "sigterm")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send_replace(true);
    };
    let (reloaded, ()) = tokio::join!(timeout(BOUND, signaller.reload(&pod.config)), sigterm);
    let err = reloaded.expect("the reload gives up when run stops").unwrap_err();
    assert!(err.to_string().contains("stopping"), "{err}");
    assert_eq!(turn.calls(), ["take", "release"], "the turn is given back");
}

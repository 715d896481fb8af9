use std::process::{Child, Command};
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
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while state(Path::new("/proc"), pid) != Some('Z') && std::time::Instant::now() < deadline {
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

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
    let mut signaller = Signaller::new(Duration::from_millis(10)).with_process_name("no-such-process-name");
    let err = signaller.reload(&config).await.unwrap_err();
    assert!(matches!(err, ReloadError::NoProcess(_)), "{err:?}");
    assert_eq!(signaller.metrics_addr(), Some("127.0.0.1:2000".parse().unwrap()));

    let given: SocketAddr = "127.0.0.1:3000".parse().unwrap();
    let mut signaller = Signaller::new(Duration::from_millis(10))
        .with_process_name("no-such-process-name")
        .with_metrics(given);
    let _ = signaller.reload(&config).await;
    assert_eq!(signaller.metrics_addr(), Some(given), "the flag wins over the config");
}

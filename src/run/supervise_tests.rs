use std::path::Path;
use std::time::Duration;

use tokio::time::timeout;

use super::*;

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

const CONFIG: &str = "/etc/cloudflared/config.yml";

#[test]
fn config_is_inserted_after_tunnel() {
    let cases = [
        ("cloudflared tunnel run", "cloudflared tunnel --config /etc/cloudflared/config.yml run"),
        (
            "cloudflared --no-autoupdate tunnel --loglevel debug run",
            "cloudflared --no-autoupdate tunnel --config /etc/cloudflared/config.yml --loglevel debug run",
        ),
        (
            "/usr/local/bin/cloudflared tunnel run --credentials-file /c.json 6ff42ae2-765d-4adf-8112-31c55c1551ef",
            "/usr/local/bin/cloudflared tunnel --config /etc/cloudflared/config.yml run --credentials-file /c.json 6ff42ae2-765d-4adf-8112-31c55c1551ef",
        ),
    ];
    for (given, expected) in cases {
        let command =
            cloudflared_command(&argv(given), Path::new(CONFIG)).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(command.join(" "), expected, "argv {given:?}");
    }
}

#[test]
fn the_same_config_before_run_is_kept() {
    for given in [
        "cloudflared tunnel --config /etc/cloudflared/config.yml run",
        "cloudflared tunnel --config=/etc/cloudflared/config.yml run",
        "cloudflared tunnel -config /etc/cloudflared/config.yml run",
    ] {
        let command = cloudflared_command(&argv(given), Path::new(CONFIG)).unwrap();
        assert_eq!(command, argv(given), "argv {given:?} is left as written");
    }
}

#[test]
fn unusable_command_lines_are_refused_with_the_reason() {
    let config = Path::new(CONFIG);
    let cases: [(&str, ArgvError); 9] = [
        ("", ArgvError::Empty),
        ("cloudflared run", ArgvError::NotTunnelRun("cloudflared run".into())),
        ("cloudflared tunnel", ArgvError::NotTunnelRun("cloudflared tunnel".into())),
        ("cloudflared tunnel --metrics 0.0.0.0:2000 run", ArgvError::Metrics("--metrics".into())),
        (
            "cloudflared tunnel run --metrics=0.0.0.0:2000",
            ArgvError::Metrics("--metrics=0.0.0.0:2000".into()),
        ),
        (
            "cloudflared tunnel --config /other.yml run",
            ArgvError::OtherConfig { given: "/other.yml".into(), expected: CONFIG.into() },
        ),
        (
            "cloudflared tunnel run --config /etc/cloudflared/config.yml",
            ArgvError::ConfigPosition("--config".into()),
        ),
        (
            "cloudflared --config /etc/cloudflared/config.yml tunnel run",
            ArgvError::ConfigPosition("--config".into()),
        ),
        ("cloudflared tunnel run --token abc", ArgvError::Token("--token".into())),
    ];
    for (given, expected) in cases {
        assert_eq!(cloudflared_command(&argv(given), config), Err(expected), "argv {given:?}");
    }
}

#[test]
fn errors_tell_what_to_do() {
    let err =
        cloudflared_command(&argv("cloudflared tunnel run --config /x"), Path::new(CONFIG)).unwrap_err();
    assert!(err.to_string().contains("between `tunnel` and `run`"), "{err}");
    let err =
        cloudflared_command(&argv("cloudflared tunnel --metrics :1 run"), Path::new(CONFIG)).unwrap_err();
    assert!(err.to_string().contains("TUNNEL_METRICS"), "{err}");
}

#[test]
fn unspecified_listen_addresses_are_probed_on_loopback() {
    assert_eq!(connectable("0.0.0.0:20241".parse().unwrap()), "127.0.0.1:20241".parse().unwrap());
    assert_eq!(connectable("[::]:20241".parse().unwrap()), "[::1]:20241".parse().unwrap());
    assert_eq!(connectable("10.0.0.1:20241".parse().unwrap()), "10.0.0.1:20241".parse().unwrap());
}

#[test]
fn ports_alternate() {
    let supervisor = Supervisor::new(&argv("cloudflared tunnel run"), Path::new(CONFIG))
        .unwrap()
        .with_metrics(IpAddr::V4(Ipv4Addr::LOCALHOST), [1001, 1002]);
    assert_eq!(supervisor.next_port(), 1001, "the first child takes the first port");
    assert_eq!(supervisor.metrics_addr(), None, "no child yet");
}

// ---- SIGTERM during a reload, against the stand-in cloudflared ----

use crate::run::fake_cloudflared as harness;

/// Far above any wait these tests expect, far below the ready timeout they give.
const BOUND: Duration = Duration::from_secs(60);

/// A supervisor of the stand-in on two free ports, logging to `log`, with a shutdown flag
/// (`stop`), that has started its first child on v1.
struct Started {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    log: harness::EventLog,
    ports: Vec<u16>,
    supervisor: Supervisor,
    stop: watch::Sender<bool>,
}

async fn started(env: (&str, &str)) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let log = harness::EventLog::new(dir.path());
    let ports = harness::free_ports(2);
    let argv = [harness::fake_cloudflared().display().to_string(), "tunnel".into(), "run".into()];
    let mut supervisor = Supervisor::new(&argv, &config)
        .unwrap()
        .with_metrics(IpAddr::V4(Ipv4Addr::LOCALHOST), [ports[0], ports[1]])
        // A reload that waited for readiness would outlast the tests by far.
        .with_ready_timeout(Duration::from_secs(600))
        .with_drain_timeout(Duration::from_secs(20))
        .with_env("FAKE_CF_EVENT_LOG", log.path.display().to_string())
        .with_env(env.0, env.1.to_string());
    let (stop, stopping) = watch::channel(false);
    supervisor.watch_shutdown(stopping);
    std::fs::write(&config, harness::config_yaml(&[("v1.example.com", "http://v1:80")])).unwrap();
    timeout(BOUND, supervisor.reload(&config)).await.expect("bounded").expect("the first child starts");
    Started { _dir: dir, config, log, ports, supervisor, stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_reload_stops_the_half_started_child_and_drains_the_serving_one() {
    let Started { _dir, config, log, ports, mut supervisor, stop } =
        started(("FAKE_CF_READY_AFTER_MS", "50")).await;
    let serving = harness::loopback(ports[0]);
    assert!(verify::wait_ready(serving, BOUND).await, "the first child becomes ready");

    // The next child never gets an edge connection: the reload waits for its /ready.
    supervisor = supervisor.with_env("FAKE_CF_READY_AFTER_MS", "never");
    std::fs::write(&config, harness::config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let sigterm = async {
        log.wait_for(BOUND, "the new child to start", |events| {
            events.iter().filter(|e| e.what.starts_with("started")).count() == 2
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send_replace(true);
    };
    let (reloaded, ()) = tokio::join!(timeout(BOUND, supervisor.reload(&config)), sigterm);
    let err = reloaded.expect("the reload gives up when run stops, not after the ready timeout").unwrap_err();
    assert!(err.to_string().contains("stopping"), "{err}");

    let starts = log.starts();
    let (old, new) = (starts[0].0, starts[1].0);
    log.wait_for(BOUND, "the half-started child to get SIGTERM", |_| log.has(new, "sigterm")).await;
    assert!(!log.has(old, "sigterm"), "the serving child is left to shutdown():\n{}", log.dump());
    assert_eq!(supervisor.metrics_addr(), Some(serving), "the serving child is still current");

    timeout(BOUND, supervisor.shutdown()).await.expect("shutdown drains within the drain timeout");
    for pid in [old, new] {
        assert!(log.has(pid, "exited code=0"), "{pid} drained:\n{}", log.dump());
        assert!(!harness::process_exists(pid), "{pid} was reaped");
    }
    assert!(!log.dump().contains("sighup"), "never SIGHUP:\n{}", log.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_serving_child_is_asked_if_ready_starts_no_new_child() {
    // The serving child answers /ready far later than OLD_READY_WAIT: a reload asks it for
    // 5 s, and SIGTERM comes 1 s into that.
    let Started { _dir, config, log, mut supervisor, stop, .. } =
        started(("FAKE_CF_READY_SLOW_MS", "60000")).await;
    std::fs::write(&config, harness::config_yaml(&[("v2.example.com", "http://v2:80")])).unwrap();
    let sigterm = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send_replace(true);
    };
    let (reloaded, ()) = tokio::join!(timeout(BOUND, supervisor.reload(&config)), sigterm);
    let err = reloaded.expect("bounded").unwrap_err();
    assert!(err.to_string().contains("whether it is ready"), "{err}");
    timeout(BOUND, supervisor.shutdown()).await.expect("shutdown drains within the drain timeout");
    assert_eq!(log.starts().len(), 1, "no second child was started:\n{}", log.dump());
}

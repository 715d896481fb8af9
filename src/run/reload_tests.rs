use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use super::*;

/// `run`'s flags as R1 flattens them.
#[derive(Debug, Parser)]
struct Run {
    #[command(flatten)]
    reload: ReloadOptions,
}

fn parse(args: &[&str]) -> Result<ReloadOptions, clap::Error> {
    Run::try_parse_from(std::iter::once("run").chain(args.iter().copied())).map(|r| r.reload)
}

#[test]
fn defaults_never_start_or_kill_anything() {
    let opts = parse(&[]).unwrap();
    assert_eq!(opts.mode, ReloadMode::None, "a bare `run` only writes");
    assert_eq!(opts.supervise_metrics_ports, vec![20241, 20242]);
    assert_eq!(opts.ready_timeout, Duration::from_secs(60));
    assert_eq!(opts.drain_timeout, Duration::from_secs(35));
    assert!(opts.cloudflared.is_empty());
    let defaults = ReloadOptions::default();
    assert_eq!(
        (defaults.mode, defaults.supervise_metrics_ports, defaults.ready_timeout, defaults.drain_timeout),
        (opts.mode, opts.supervise_metrics_ports, opts.ready_timeout, opts.drain_timeout),
        "Default matches the flags' defaults"
    );
}

#[test]
fn supervise_takes_the_argv_after_the_double_dash() {
    let opts = parse(&[
        "--reload",
        "supervise",
        "--supervise-metrics-ports",
        "3001,3002",
        "--ready-timeout",
        "90s",
        "--",
        "cloudflared",
        "--no-autoupdate",
        "tunnel",
        "run",
    ])
    .unwrap();
    assert_eq!(opts.mode, ReloadMode::Supervise);
    assert_eq!(opts.supervise_metrics_ports, vec![3001, 3002]);
    assert_eq!(opts.ready_timeout, Duration::from_secs(90));
    assert_eq!(opts.cloudflared, ["cloudflared", "--no-autoupdate", "tunnel", "run"]);

    let reloader = build(&opts, Path::new("/tmp/cf/config.yml")).unwrap();
    let AnyReloader::Supervise(supervisor) = &reloader else { panic!("supervise mode") };
    assert_eq!(
        supervisor.command_line().join(" "),
        "cloudflared --no-autoupdate tunnel --config /tmp/cf/config.yml run"
    );
    assert_eq!(reloader.mode(), ReloadMode::Supervise);
}

#[test]
fn signal_takes_pidfile_and_metrics() {
    let opts = parse(&[
        "--reload",
        "signal",
        "--cloudflared-pidfile",
        "/run/cloudflared/pid",
        "--cloudflared-metrics",
        "localhost:2000",
    ])
    .unwrap();
    assert_eq!(opts.cloudflared_metrics, Some("127.0.0.1:2000".parse().unwrap()));
    let reloader = build(&opts, Path::new("/tmp/config.yml")).unwrap();
    assert_eq!(reloader.mode(), ReloadMode::Signal);
    assert_eq!(reloader.metrics_addr(), Some("127.0.0.1:2000".parse().unwrap()));
}

#[test]
fn flags_that_cannot_work_together_are_refused() {
    let config = Path::new("/tmp/config.yml");
    let cases: [(&[&str], &str); 5] = [
        (&["--", "cloudflared", "tunnel", "run"], "only used with --reload supervise"),
        (&["--reload", "supervise"], "needs the cloudflared command line"),
        (
            &["--reload", "supervise", "--", "cloudflared", "tunnel", "--metrics", ":1", "run"],
            "TUNNEL_METRICS",
        ),
        (
            &[
                "--reload",
                "supervise",
                "--supervise-metrics-ports",
                "3001,3001",
                "--",
                "cloudflared",
                "tunnel",
                "run",
            ],
            "two different non-zero ports",
        ),
        (
            &["--reload", "supervise", "--cloudflared-pidfile", "/p", "--", "cloudflared", "tunnel", "run"],
            "--cloudflared-pidfile is for --reload signal",
        ),
    ];
    for (args, expected) in cases {
        let opts = parse(args).unwrap();
        let err = match build(&opts, config) {
            Ok(_) => panic!("{args:?} should be refused"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn metrics_addresses_are_read_as_connectable() {
    let cases = [
        ("0.0.0.0:2000", Ok("127.0.0.1:2000")),
        ("localhost:2000", Ok("127.0.0.1:2000")),
        (":2000", Ok("127.0.0.1:2000")),
        ("[::]:2000", Ok("[::1]:2000")),
        ("10.1.2.3:2000", Ok("10.1.2.3:2000")),
        ("localhost:", Err("not a number")),
        ("localhost:0", Err("port 0")),
        ("metrics.internal:2000", Err("an IP or localhost")),
        ("2000", Err("not HOST:PORT")),
    ];
    for (value, expected) in cases {
        match (parse_metrics_addr(value), expected) {
            (Ok(addr), Ok(want)) => assert_eq!(addr, want.parse().unwrap(), "{value}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{value}: {e}"),
            (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn the_config_metrics_key_is_the_default_address() {
    assert_eq!(
        metrics_from_config("tunnel: x\nmetrics: 0.0.0.0:2000\ningress: []\n"),
        Some("127.0.0.1:2000".parse().unwrap())
    );
    assert_eq!(metrics_from_config("tunnel: x\n"), None);
    assert_eq!(metrics_from_config("metrics: localhost:\n"), None, "a random port cannot be probed");
}

#[test]
fn durations() {
    let cases =
        [("500ms", 500), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000), ("45", 45_000), ("1.5s", 1500)];
    for (value, millis) in cases {
        assert_eq!(parse_duration(value), Ok(Duration::from_millis(millis)), "{value}");
    }
    assert_eq!(parse_duration(" 15 s "), Ok(Duration::from_secs(15)));
    for bad in ["", "s", "5 parsecs", "15 days", "-1s", "1e3"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn no_reload_verifies_on_the_config_metrics_key_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "ingress:\n  - service: http_status:404\n").unwrap();
    let from_config: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    let mut none = NoReload::default();
    none.use_config_metrics(Some(from_config));
    none.reload(&config).await.unwrap();
    assert_eq!(none.metrics_addr(), Some(from_config));
    none.use_config_metrics(None);
    assert_eq!(none.metrics_addr(), None, "the key was taken out of the config");

    let given = "127.0.0.1:9".parse().unwrap();
    let mut none = NoReload::new(Some(given));
    none.use_config_metrics(Some(from_config));
    none.reload(&config).await.unwrap();
    assert_eq!(none.metrics_addr(), Some(given), "--cloudflared-metrics wins");
}

#[tokio::test]
async fn recorder_records_calls_with_the_file_contents_and_plays_back_failures() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let recorder = Recorder::new().with_metrics("127.0.0.1:2000".parse().unwrap());
    let mut reloader = recorder.clone();

    std::fs::write(&config, "first").unwrap();
    reloader.reload(&config).await.unwrap();
    recorder.fail_next(ReloadError::NotReady(Duration::from_secs(1)));
    std::fs::write(&config, "second").unwrap();
    assert!(matches!(reloader.reload(&config).await, Err(ReloadError::NotReady(_))));
    reloader.reload(&dir.path().join("missing")).await.unwrap();
    reloader.shutdown().await;

    assert_eq!(recorder.reload_count(), 3);
    assert_eq!(recorder.reloaded_contents(), [Some("first".to_string()), Some("second".to_string()), None]);
    assert_eq!(recorder.calls().last(), Some(&RecordedCall::Shutdown));
    assert_eq!(reloader.metrics_addr(), Some("127.0.0.1:2000".parse().unwrap()));
}

#[tokio::test]
async fn sigterm_during_a_reload_ends_the_pipeline_without_a_failure() {
    use crate::run::admin::Health;
    use crate::run::files::RenderInputs;
    use crate::run::metrics::{Metrics, ResultLabel};
    use crate::run::pipeline::{Changes, Debounce, Pipeline, PipelineConfig};
    use crate::run::source::SourceState;
    use crate::run::writer::ConfigWriter;
    use routes_core::render::{BaseConfig, Tunnel};
    use routes_core::status::Programmed;

    let dir = tempfile::tempdir().unwrap();
    let writer = ConfigWriter::new(&dir.path().join("config.yml")).unwrap();
    // A reload that would take an hour, unless `run` stops.
    let mut recorder = Recorder::new().with_delay(Duration::from_secs(3600));
    let (stop, stopping) = watch::channel(false);
    recorder.watch_shutdown(stopping.clone());
    let calls = recorder.clone();
    let (status_tx, status_rx) = watch::channel(None);
    let metrics = Arc::new(Metrics::new());
    let config = PipelineConfig {
        debounce: Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) },
        verify_timeout: Duration::from_secs(1),
        resync: None,
    };
    let health = Arc::new(Health::default());
    let pipeline = Pipeline::new(
        config,
        writer,
        recorder,
        super::super::CloudflaredVerifier,
        metrics.clone(),
        status_tx,
        health,
    );
    let (_source, source_rx) = watch::channel(SourceState { synced: true, ..Default::default() });
    let inputs = RenderInputs {
        settings: Default::default(),
        base: BaseConfig::parse("").unwrap(),
        tunnel: Tunnel { id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), credentials_file: None },
    };
    let (_inputs, inputs_rx) = watch::channel(Arc::new(inputs));
    let task = tokio::spawn(pipeline.run(Changes::new(source_rx, inputs_rx, stopping)));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while calls.reload_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first reload never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the pipeline ends without waiting out the reload")
        .unwrap()
        .expect("a clean stop");
    assert_eq!(calls.calls().last(), Some(&RecordedCall::Shutdown), "the reloader is drained");
    let programmed = status_rx.borrow().as_ref().map(|r| r.programmed.clone());
    assert_eq!(programmed, Some(Programmed::Pending), "an abandoned reload is no failure to report");
    assert_eq!(metrics.reloads.get_or_create(&ResultLabel::new("Other")).get(), 0, "nor counted as one");
}

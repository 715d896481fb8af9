//! A stand-in for `cloudflared tunnel run`, behaving as DOMAIN.md §2 says, for the reload tests.
//!
//! Command line: `fake-cloudflared [global flags] tunnel [--config F] [--metrics A]
//! [--pidfile P] [other flags] run [TUNNEL]`. A flag after `run` is refused the way cloudflared
//! refuses it: "flag provided but not defined", exit 0. The metrics address is `--metrics`,
//! else `TUNNEL_METRICS`, else the config's `metrics:` key, else cloudflared's default ports
//! 20241..20245 on localhost.
//!
//! It reads the config once, at start, and serves on its metrics address:
//! - `/ready`: 503 until `FAKE_CF_READY_AFTER_MS` (default 100; `never`: no edge reachable)
//!   has passed, then `{"status":200,"readyConnections":4,"connectorId":"…"}`; 503 again as
//!   soon as it is draining; each answer comes `FAKE_CF_READY_SLOW_MS` late (default 0: a
//!   starved machine);
//! - `/healthcheck`: `OK`;
//! - `/config`: `{"version":-1,"config":{"ingress":[…],"warp-routing":{},"originRequest":{…}}}`
//!   with `"hostname":""` and `"path":null` where the file had none, as cloudflared reports.
//!
//! Signals: SIGTERM/SIGINT drain (`/ready` 503 at once, exit 0 after `FAKE_CF_GRACE_MS`,
//! default 200; a second one exits at once); SIGHUP exits 129 at once. `FAKE_CF_CRASH_AFTER_MS`
//! makes it exit 1 after that long; while the file `FAKE_CF_FAIL_IF_EXISTS` names exists, it
//! exits 1 right after it started (a revoked tunnel). The pidfile (`--pidfile` or
//! `TUNNEL_PIDFILE`) is written once ready, like cloudflared writes it after its first
//! connection.
//!
//! Every step is appended to the file named by `FAKE_CF_EVENT_LOG`, one line each:
//! `<unix_ms> <pid> started config=<path> metrics=<addr>`, `ready`, `sigterm`, `sigint`,
//! `sighup`, `crash`, `failing`, `exited code=<N>`, so tests can order events across processes.
//!
//! Cargo also finds this file as an integration test (`tests/*/main.rs`); built that way it
//! holds no tests, and nothing here is dead code.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// Appends one line to the event log (one `write` call, so lines of concurrent processes
/// never interleave).
fn event(what: &str) {
    let Some(path) = std::env::var_os("FAKE_CF_EVENT_LOG") else { return };
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let line = format!("{millis} {} {what}\n", std::process::id());
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(line.as_bytes());
    }
}

fn exit(code: i32) -> ! {
    event(&format!("exited code={code}"));
    std::process::exit(code)
}

fn env_millis(name: &str) -> Option<Duration> {
    std::env::var(name).ok()?.parse().ok().map(Duration::from_millis)
}

#[derive(Default)]
struct Flags {
    config: Option<String>,
    metrics: Option<String>,
    pidfile: Option<String>,
}

fn usage(why: &str) -> ! {
    eprintln!("fake-cloudflared: {why}");
    exit(1)
}

/// The `tunnel` flags before `run`; anything unusable ends the process as cloudflared would.
fn parse_flags(argv: &[String]) -> Flags {
    let tunnel = argv.iter().position(|a| a == "tunnel").unwrap_or_else(|| usage("expected `tunnel`"));
    let mut flags = Flags::default();
    let mut i = tunnel + 1;
    loop {
        let Some(token) = argv.get(i) else { usage("expected `run`") };
        if token == "run" {
            break;
        }
        let Some(flag) = token.strip_prefix("--").or_else(|| token.strip_prefix('-')) else {
            usage(&format!("unexpected argument {token:?} before `run`"))
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let slot = match name {
            "config" => Some(&mut flags.config),
            "metrics" => Some(&mut flags.metrics),
            "pidfile" => Some(&mut flags.pidfile),
            _ => None,
        };
        let takes_value = slot.is_some() || matches!(name, "loglevel" | "grace-period" | "protocol");
        let value = match (takes_value, inline) {
            (_, Some(value)) => Some(value),
            (true, None) => {
                i += 1;
                Some(argv.get(i).cloned().unwrap_or_else(|| usage(&format!("{token} needs a value"))))
            }
            (false, None) => None,
        };
        if let Some(slot) = slot {
            *slot = value;
        }
        i += 1;
    }
    // cloudflared's `run` does not define the tunnel flags: it prints this and exits 0.
    if let Some(flag) = argv[i + 1..].iter().find(|a| a.starts_with('-')) {
        let name = flag.trim_start_matches('-').split('=').next().unwrap_or_default();
        eprintln!("Incorrect Usage: flag provided but not defined: -{name}");
        exit(0);
    }
    flags
}

/// `/config` as cloudflared's orchestrator marshals it: each rule's `originRequest` is the one
/// in effect, its own keys over the top-level ones (cloudflared also fills in its defaults,
/// which this stand-in leaves out).
fn loaded_config(config: &Value) -> Value {
    let defaults = config.get("originRequest").and_then(Value::as_object).cloned().unwrap_or_default();
    let rules: Vec<Value> = config["ingress"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|rule| {
                    let mut origin = defaults.clone();
                    if let Some(own) = rule.get("originRequest").and_then(Value::as_object) {
                        origin.extend(own.clone());
                    }
                    json!({
                        "hostname": rule["hostname"].as_str().unwrap_or_default(),
                        "path": rule["path"].as_str(),
                        "rewrite": "",
                        "service": rule["service"].as_str().unwrap_or_default(),
                        "Handlers": null,
                        "originRequest": origin,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "version": -1,
        "config": {
            "ingress": rules,
            "warp-routing": {},
            "originRequest": config.get("originRequest").cloned().unwrap_or(json!({})),
        }
    })
}

struct State {
    ready: AtomicBool,
    draining: AtomicBool,
    loaded: Value,
    connector: String,
}

fn respond(state: &State, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/ready" => {
            let ready = state.ready.load(Ordering::SeqCst) && !state.draining.load(Ordering::SeqCst);
            let (status, connections) = if ready { (200, 4) } else { (503, 0) };
            let body =
                json!({"status": status, "readyConnections": connections, "connectorId": state.connector});
            (status, body.to_string())
        }
        "/healthcheck" => (200, "OK\n".to_string()),
        "/config" => (200, state.loaded.to_string()),
        "/metrics" => (200, "# fake-cloudflared\n".to_string()),
        _ => (404, "404 page not found\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

async fn bind(flags: &Flags, config: &Value) -> TcpListener {
    let configured = flags
        .metrics
        .clone()
        .or_else(|| std::env::var("TUNNEL_METRICS").ok())
        .or_else(|| config["metrics"].as_str().map(String::from));
    let candidates: Vec<String> = match configured {
        Some(address) => vec![address.replacen("localhost:", "127.0.0.1:", 1)],
        None => (20241..=20245).map(|port| format!("127.0.0.1:{port}")).collect(),
    };
    for candidate in &candidates {
        if let Ok(listener) = TcpListener::bind(candidate.as_str()).await {
            return listener;
        }
    }
    eprintln!("fake-cloudflared: cannot listen on {candidates:?}");
    exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Handlers first: a signal that arrives early must still be logged, not kill us silently.
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut hangup = signal(SignalKind::hangup()).expect("SIGHUP handler");

    let argv: Vec<String> = std::env::args().skip(1).collect();
    let flags = parse_flags(&argv);
    let Some(config_path) = flags.config.clone() else {
        eprintln!("fake-cloudflared: no --config");
        exit(1)
    };
    // Read once, like cloudflared: later writes to the file change nothing in this process.
    let config: Value = match std::fs::read_to_string(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_saphyr::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fake-cloudflared: cannot read {config_path}: {e}");
            exit(1)
        }
    };
    if config["ingress"].as_array().is_none_or(|rules| rules.is_empty()) {
        eprintln!("fake-cloudflared: the config file doesn't contain any ingress rules");
        exit(1)
    }

    let listener = bind(&flags, &config).await;
    let addr: SocketAddr = listener.local_addr().expect("bound");
    let state = Arc::new(State {
        ready: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        loaded: loaded_config(&config),
        connector: format!("fake-{}-{addr}", std::process::id()),
    });
    event(&format!("started config={config_path} metrics={addr}"));
    // A tunnel that cannot run (revoked or deleted, a bad flag): cloudflared starts, gives up
    // and exits 1, every time it is started, for as long as that lasts.
    if std::env::var_os("FAKE_CF_FAIL_IF_EXISTS").is_some_and(|p| std::path::Path::new(&p).exists()) {
        event("failing");
        exit(1)
    }

    let server_state = state.clone();
    let ready_slow = std::env::var("FAKE_CF_READY_SLOW_MS").ok().and_then(|ms| ms.parse().ok());
    let ready_slow = Duration::from_millis(ready_slow.unwrap_or(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let state = server_state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let slow = if request.uri().path() == "/ready" { ready_slow } else { Duration::ZERO };
                    let response = respond(&state, request.uri().path());
                    async move {
                        tokio::time::sleep(slow).await;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    // "Connecting to the edge": ready after a while, unless no edge is reachable.
    let ready_after = match std::env::var("FAKE_CF_READY_AFTER_MS").as_deref() {
        Ok("never") => None,
        _ => Some(env_millis("FAKE_CF_READY_AFTER_MS").unwrap_or(Duration::from_millis(100))),
    };
    if let Some(delay) = ready_after {
        let state = state.clone();
        let pidfile = flags.pidfile.clone().or_else(|| std::env::var("TUNNEL_PIDFILE").ok());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if state.draining.load(Ordering::SeqCst) {
                return;
            }
            state.ready.store(true, Ordering::SeqCst);
            event("ready");
            if let Some(pidfile) = pidfile {
                let _ = std::fs::write(pidfile, format!("{}\n", std::process::id()));
            }
        });
    }
    let crash = async {
        match env_millis("FAKE_CF_CRASH_AFTER_MS") {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };

    let first = tokio::select! {
        _ = terminate.recv() => "sigterm",
        _ = interrupt.recv() => "sigint",
        _ = hangup.recv() => {
            // cloudflared has no reload signal: SIGHUP kills it at once.
            event("sighup");
            exit(129)
        }
        _ = crash => {
            event("crash");
            exit(1)
        }
    };
    event(first);
    state.draining.store(true, Ordering::SeqCst);
    let grace = env_millis("FAKE_CF_GRACE_MS").unwrap_or(Duration::from_millis(200));
    tokio::select! {
        _ = tokio::time::sleep(grace) => exit(0),
        _ = terminate.recv() => {
            event("sigterm");
            exit(0)
        }
        _ = interrupt.recv() => {
            event("sigint");
            exit(0)
        }
        _ = hangup.recv() => {
            event("sighup");
            exit(129)
        }
    }
}

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::*;

const RENDERED: &str = r#"
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /etc/cloudflared/creds/credentials.json
metrics: 0.0.0.0:2000
originRequest: {connectTimeout: 10s}
ingress:
  # HTTPRoute default/api rule 0 match 0
  - hostname: api.example.com
    path: ^/v1(?:/.*)?$
    service: http://api.default.svc.cluster.local:8080
    originRequest: {httpHostHeader: api.internal}
  - hostname: api.example.com
    path: ^/
    service: http_status:404
  - path: ^/healthz$
    service: http://health.default.svc.cluster.local:80
  - service: http_status:404
"#;

/// What cloudflared reports for `RENDERED`: every rule's originRequest filled with defaults,
/// durations in seconds, `"hostname":""` and `"path":null` where the YAML had none.
fn loaded_json(first_service: &str) -> String {
    loaded_json_with(first_service, "api.internal")
}

/// [`loaded_json`] with the first rule's `httpHostHeader` in effect.
fn loaded_json_with(first_service: &str, host_header: &str) -> String {
    let origin = |host_header: &str| {
        format!(
            r#"{{"connectTimeout":10,"tlsTimeout":10,"tcpKeepAlive":30,"noHappyEyeballs":false,"keepAliveTimeout":90,"keepAliveConnections":100,"httpHostHeader":"{host_header}","originServerName":"","caPool":"","noTLSVerify":false,"disableChunkedEncoding":false,"bastionMode":false,"proxyAddress":"127.0.0.1","proxyPort":0,"proxyType":"","ipRules":null,"http2Origin":false,"access":{{"teamName":"","audTag":null}}}}"#
        )
    };
    let (first, defaults) = (origin(host_header), origin(""));
    format!(
        r#"{{"version":-1,"config":{{"ingress":[
        {{"hostname":"api.example.com","path":"^/v1(?:/.*)?$","rewrite":"","service":"{first_service}","Handlers":null,"originRequest":{first}}},
        {{"hostname":"api.example.com","path":"^/","rewrite":"","service":"http_status:404","Handlers":null,"originRequest":{defaults}}},
        {{"hostname":"","path":"^/healthz$","rewrite":"","service":"http://health.default.svc.cluster.local:80","Handlers":null,"originRequest":{defaults}}},
        {{"hostname":"","path":null,"rewrite":"","service":"http_status:404","Handlers":null,"originRequest":{defaults}}}
        ],"warp-routing":{{"connectTimeout":5,"maxActiveFlows":0,"tcpKeepAlive":30}},"originRequest":{defaults}}}}}"#
    )
}

const API: &str = "http://api.default.svc.cluster.local:8080";

/// The timeout of a verification that must succeed: it returns as soon as it does, and a
/// loaded machine may take seconds to answer even on loopback.
const BOUND: Duration = Duration::from_secs(30);
/// The timeout of a verification that must end in a mismatch: it polls until then, so short,
/// but a local answer must come within it on a loaded machine too (none is `Unreachable`).
const MISMATCH_WAIT: Duration = Duration::from_secs(2);

/// Serves every request with `respond(n)` (n counts requests from 0): status, body, delay.
async fn serve<F>(respond: F) -> SocketAddr
where
    F: Fn(usize) -> (u16, String, Duration) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let respond = respond.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let (status, body, delay) = respond(count.fetch_add(1, Ordering::SeqCst));
                    async move {
                        tokio::time::sleep(delay).await;
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test]
async fn equal_ingress_verifies_ignoring_other_origin_keys_and_durations() {
    let addr = serve(|_| (200, loaded_json(API), Duration::ZERO)).await;
    verify(addr, RENDERED, BOUND).await.expect("equal ingress verifies");
}

#[tokio::test]
async fn an_origin_request_key_we_render_is_compared_in_effect() {
    // Same routing, but cloudflared still sends the old Host header: not running the file yet.
    let addr = serve(|_| (200, loaded_json_with(API, ""), Duration::ZERO)).await;
    let err = verify(addr, RENDERED, MISMATCH_WAIT).await.unwrap_err();
    match &err {
        VerifyError::Mismatch { difference, .. } => {
            assert!(difference.starts_with("rule #0:"), "{difference}");
            assert!(difference.contains(r#"httpHostHeader: "api.internal""#), "{difference}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // A top-level key is in effect on every rule that does not set its own.
    let rendered =
        RENDERED.replace("originRequest: {connectTimeout: 10s}", "originRequest: {noTLSVerify: true}");
    let expected = rendered_rules(&rendered).unwrap();
    assert!(expected.iter().all(|r| r.origin.no_tls_verify == Some(true)));
    assert_eq!(expected[0].origin.http_host_header.as_deref(), Some("api.internal"));
    assert_eq!(expected[1].origin, OriginKeys { no_tls_verify: Some(true), ..OriginKeys::default() });
    // A key the file does not set is not compared: cloudflared may have it from a flag.
    let loaded = |host_header: &str, no_tls_verify: bool| RuleKey {
        hostname: "a".into(),
        path: String::new(),
        service: API.into(),
        origin: OriginKeys {
            http_host_header: Some(host_header.into()),
            origin_server_name: Some(String::new()),
            http2_origin: Some(false),
            no_tls_verify: Some(no_tls_verify),
            bastion_mode: None,
        },
    };
    let want = RuleKey { origin: OriginKeys::default(), ..loaded("", false) };
    assert!(want.satisfied_by(&loaded("from-a-flag", true)));
    let want = RuleKey { origin: OriginKeys { no_tls_verify: Some(false), ..OriginKeys::default() }, ..want };
    assert!(!want.satisfied_by(&loaded("", true)));
}

#[tokio::test]
async fn different_service_is_a_mismatch_naming_the_rule() {
    let addr =
        serve(|_| (200, loaded_json("http://old.default.svc.cluster.local:8080"), Duration::ZERO)).await;
    let err = verify(addr, RENDERED, MISMATCH_WAIT).await.unwrap_err();
    match &err {
        VerifyError::Mismatch { difference, .. } => {
            assert!(difference.starts_with("rule #0:"), "difference names the first rule: {difference}");
            assert!(difference.contains("old.default"), "difference shows what runs: {difference}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn fewer_rules_is_a_mismatch() {
    let body =
        r#"{"version":-1,"config":{"ingress":[{"hostname":"","path":null,"service":"http_status:404"}]}}"#;
    let addr = serve(move |_| (200, body.to_string(), Duration::ZERO)).await;
    let err = verify(addr, RENDERED, MISMATCH_WAIT).await.unwrap_err();
    let VerifyError::Mismatch { difference, .. } = err else { panic!("expected a mismatch") };
    assert!(difference.starts_with("rule #0:"), "{difference}");
}

#[tokio::test]
async fn extra_rules_are_a_mismatch() {
    let rendered = "ingress:\n  - hostname: api.example.com\n    service: http://a:1\n";
    let body = r#"{"version":-1,"config":{"ingress":[{"hostname":"api.example.com","path":null,"service":"http://a:1"},{"hostname":"","path":null,"service":"http_status:404"}]}}"#;
    let addr = serve(move |_| (200, body.to_string(), Duration::ZERO)).await;
    let err = verify(addr, rendered, MISMATCH_WAIT).await.unwrap_err();
    let VerifyError::Mismatch { difference, .. } = err else { panic!("expected a mismatch") };
    assert_eq!(difference, "1 rules rendered, cloudflared runs 2");
}

#[tokio::test]
async fn a_config_slower_than_a_ready_probe_is_waited_for() {
    // A large config takes cloudflared a while to write out; the wait for it is not cut at
    // the 2 s of a /ready probe.
    let addr = serve(|_| (200, loaded_json(API), Duration::from_millis(2500))).await;
    verify(addr, RENDERED, BOUND).await.expect("a slow /config still verifies");
}

#[tokio::test(start_paused = true)]
async fn a_config_request_is_given_up_when_cloudflared_would_have_cut_it() {
    // cloudflared's metrics server cuts any answer at 10 s (Go's http.Server WriteTimeout):
    // a request still unanswered then (a stopped or starved cloudflared) never will be, so it
    // is not waited on longer, whatever the time left for the verification.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never answers
    let started = tokio::time::Instant::now();
    let err = http_get(listener.local_addr().unwrap(), "/config", Duration::from_secs(60)).await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "cut when cloudflared's own write deadline passed"
    );
}

#[tokio::test]
async fn order_matters() {
    let rendered = "ingress:\n  - hostname: a.example.com\n    service: http://a:1\n  - hostname: b.example.com\n    service: http://b:1\n  - service: http_status:404\n";
    let body = r#"{"version":-1,"config":{"ingress":[{"hostname":"b.example.com","path":null,"service":"http://b:1"},{"hostname":"a.example.com","path":null,"service":"http://a:1"},{"hostname":"","path":null,"service":"http_status:404"}]}}"#;
    let addr = serve(move |_| (200, body.to_string(), Duration::ZERO)).await;
    assert!(matches!(verify(addr, rendered, MISMATCH_WAIT).await, Err(VerifyError::Mismatch { .. })));
}

#[tokio::test]
async fn slow_convergence_is_waited_for() {
    // The old process answers first; the new rules show up on the fourth poll.
    let addr = serve(|n| {
        let service = if n < 3 { "http://old:1" } else { API };
        (200, loaded_json(service), Duration::ZERO)
    })
    .await;
    verify(addr, RENDERED, BOUND).await.expect("converges within the timeout");
}

#[tokio::test]
async fn not_ready_yet_answers_are_retried() {
    // A metrics server that is not up yet, then answers 503, then the config.
    let addr = serve(|n| match n {
        0 | 1 => (503, String::new(), Duration::ZERO),
        _ => (200, loaded_json(API), Duration::ZERO),
    })
    .await;
    verify(addr, RENDERED, BOUND).await.expect("retried until the config shows");
}

#[tokio::test]
async fn slow_server_times_out_as_unreachable() {
    let addr = serve(|_| (200, loaded_json(API), Duration::from_secs(10))).await;
    let started = std::time::Instant::now();
    let err = verify(addr, RENDERED, Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, VerifyError::Unreachable { .. }), "{err:?}");
    // Not the 10 s the server takes (load may add seconds to the 500 ms timeout).
    assert!(started.elapsed() < Duration::from_secs(8), "bounded by the timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let err = verify(free_addr(), RENDERED, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, VerifyError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[tokio::test]
async fn unreadable_rendered_config_is_reported() {
    let err = verify(free_addr(), "tunnel: x\n", Duration::from_millis(10)).await.unwrap_err();
    assert!(matches!(err, VerifyError::Rendered(_)), "{err:?}");
}

#[test]
fn services_compare_as_cloudflared_reports_them() {
    let cases = [
        ("http://a.b.svc.cluster.local:80", "http://a.b.svc.cluster.local:80"),
        ("HTTPS://a:443", "https://a:443"),
        ("ssh://host", "ssh://host:22"),
        ("ssh://host:2222", "ssh://host:2222"),
        ("rdp://[::1]", "rdp://[::1]:3389"),
        ("tcp://[::1]:9", "tcp://[::1]:9"),
        ("hello-world", "hello_world"),
        ("http_status:404", "http_status:404"),
        ("http_status:0404", "http_status:404"),
        ("http_status:+404", "http_status:404"),
        ("http_status:4x4", "http_status:4x4"),
        ("unix:/run/app.sock", "unix:/run/app.sock"),
    ];
    for (written, reported) in cases {
        assert_eq!(normalize_service(written), reported, "service {written}");
        assert_eq!(normalize_service(reported), reported, "idempotent on {reported}");
    }
}

#[test]
fn a_url_rule_in_bastion_mode_is_expected_as_bastion() {
    // cloudflared serves and reports it as `bastion`, whether the rule or the top level sets it.
    let yaml = "originRequest: {bastionMode: true}\ningress:\n\
                - {hostname: ssh.example.com, service: ssh://host:22}\n\
                - {hostname: own.example.com, service: http://a:80, originRequest: {bastionMode: true}}\n\
                - {hostname: off.example.com, service: http://a:80, originRequest: {bastionMode: false}}\n\
                - service: http_status:404\n";
    let services: Vec<String> = rendered_rules(yaml).unwrap().into_iter().map(|r| r.service).collect();
    assert_eq!(services, ["bastion", "bastion", "http://a:80", "http_status:404"]);
}

#[tokio::test]
async fn readiness_reads_the_status_code() {
    let ready = serve(|_| (200, r#"{"status":200,"readyConnections":4}"#.into(), Duration::ZERO)).await;
    let not_ready = serve(|_| (503, r#"{"status":503,"readyConnections":0}"#.into(), Duration::ZERO)).await;
    // Each answers at once (an answer, or a refused connection): BOUND only waits out a load.
    assert_eq!(readiness(ready, BOUND).await, Readiness::Ready);
    assert_eq!(readiness(not_ready, BOUND).await, Readiness::NotReady);
    assert_eq!(readiness(free_addr(), BOUND).await, Readiness::Unreachable);
    assert!(wait_ready(ready, BOUND).await);
    assert!(!wait_ready(not_ready, Duration::from_millis(300)).await);
}

//! `--reload supervise` with the real cloudflared, when `CLOUDFLARED_BIN` names one: a route
//! change makes the new process's `/config` show the new rules. No edge needs to be reachable
//! (the credentials are made up), so no child ever becomes ready and every reload waits for
//! the new child's `/config` instead. Without `CLOUDFLARED_BIN` it prints
//! `skipped: CLOUDFLARED_BIN is not set`.

#[path = "fake_cloudflared/harness.rs"]
mod harness;

use std::io::Read;
use std::time::Duration;

use cloudflared_routes::run::reload::{Reloader, Supervisor};
use cloudflared_routes::run::verify;
use harness::{free_ports, loopback};

/// `n` random bytes from the kernel.
fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("/dev/urandom");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = random(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn config(tunnel: &str, credentials: &std::path::Path, rules: &[(&str, &str)]) -> String {
    let mut yaml = format!("tunnel: {tunnel}\ncredentials-file: {}\ningress:\n", credentials.display());
    for (hostname, service) in rules {
        yaml.push_str(&format!("  - hostname: {hostname}\n    service: {service}\n"));
    }
    yaml.push_str("  - service: http_status:404\n");
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_change_reaches_the_new_cloudflared() {
    let Some(bin) = std::env::var("CLOUDFLARED_BIN").ok().filter(|b| !b.is_empty()) else {
        eprintln!("skipped: CLOUDFLARED_BIN is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tunnel = uuid();
    let credentials = dir.path().join("credentials.json");
    std::fs::write(
        &credentials,
        format!(
            r#"{{"AccountTag":"{}","TunnelSecret":"{}","TunnelID":"{tunnel}"}}"#,
            hex(&random(16)),
            base64(&random(32))
        ),
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    let ports = free_ports(2);
    let argv = [bin, "--no-autoupdate".into(), "tunnel".into(), "run".into()];
    let mut supervisor = Supervisor::new(&argv, &path)
        .unwrap()
        .with_metrics([127, 0, 0, 1].into(), [ports[0], ports[1]])
        .with_ready_timeout(Duration::from_secs(30))
        .with_drain_timeout(Duration::from_secs(10))
        // Drain fast: there are no requests in flight.
        .with_env("TUNNEL_GRACE_PERIOD", "1s");

    let v1 = config(&tunnel, &credentials, &[("v1.example.com", "http://127.0.0.1:8081")]);
    std::fs::write(&path, &v1).unwrap();
    let first =
        tokio::time::timeout(Duration::from_secs(60), supervisor.reload(&path)).await.expect("bounded");
    first.expect("the first cloudflared serves v1 on /config");
    verify::verify(loopback(ports[0]), &v1, Duration::from_secs(5)).await.expect("v1");

    let v2 = config(
        &tunnel,
        &credentials,
        &[("v2.example.com", "http://127.0.0.1:8082"), ("api.example.com", "https://127.0.0.1:8443")],
    );
    std::fs::write(&path, &v2).unwrap();
    let second =
        tokio::time::timeout(Duration::from_secs(60), supervisor.reload(&path)).await.expect("bounded");
    second.expect("the new cloudflared serves v2 on /config");
    assert_eq!(supervisor.metrics_addr(), Some(loopback(ports[1])));
    verify::verify(loopback(ports[1]), &v2, Duration::from_secs(5)).await.expect("the new process runs v2");

    tokio::time::timeout(Duration::from_secs(30), supervisor.shutdown()).await.expect("drained");
}

#[test]
fn base64_matches_the_standard_alphabet() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

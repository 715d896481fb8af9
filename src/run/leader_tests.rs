use super::*;

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[test]
fn lease_name_is_a_readable_dns_label() {
    let default = lease_name("cloudflared-routes/gateway-controller");
    assert!(default.starts_with("cloudflared-routes-gateway-controller-"), "{default}");
    assert_eq!(default.len(), "cloudflared-routes-gateway-controller-".len() + 8);
    let other = lease_name("Example.COM/Tunnel_Controller");
    assert!(other.starts_with("cloudflared-routes-example-com-tunnel-controller-"), "{other}");
    for name in
        [default, other, lease_name(""), lease_name("///"), lease_name(&"x.".repeat(80)), lease_name("ü/ö")]
    {
        assert!(is_dns_label(&name), "{name}");
    }
}

#[test]
fn lease_name_is_stable_and_tells_similar_names_apart() {
    assert_eq!(lease_name("example.com/c"), lease_name("example.com/c"));
    // The slug alone would be the same.
    assert_ne!(lease_name("example.com/c"), lease_name("example-com/c"));
    // Pinned: the name is a contract with running replicas across versions.
    assert_eq!(fnv1a(b""), 0x811c_9dc5);
    assert_eq!(fnv1a(b"a"), 0xe40c_292c);
}

#[test]
fn timing_keeps_client_go_ratios() {
    let opts = LeaderElectionOptions::new("ns", "c", "me", Duration::from_secs(15));
    assert_eq!(opts.renew_deadline, Duration::from_secs(10));
    assert_eq!(opts.retry_period, Duration::from_secs(2));
    assert_eq!(opts.namespace, "ns");
    assert_eq!(opts.lease_name, lease_name("c"));
    let fast = LeaderElectionOptions::new("ns", "c", "me", Duration::from_millis(300));
    assert!(fast.retry_period >= Duration::from_millis(50) && fast.renew_deadline < fast.lease_duration);
}

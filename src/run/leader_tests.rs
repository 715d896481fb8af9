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
    let default = lease_name("cloudflared-routes/gateway-controller", &[]);
    assert!(default.starts_with("cloudflared-routes-gateway-controller-"), "{default}");
    assert_eq!(default.len(), "cloudflared-routes-gateway-controller-".len() + 8);
    let other = lease_name("Example.COM/Tunnel_Controller", &[]);
    assert!(other.starts_with("cloudflared-routes-example-com-tunnel-controller-"), "{other}");
    for name in [
        default,
        other,
        lease_name("", &[]),
        lease_name("///", &[]),
        lease_name(&"x.".repeat(80), &[]),
        lease_name("ü/ö", &[]),
    ] {
        assert!(is_dns_label(&name), "{name}");
    }
}

#[test]
fn lease_name_is_stable_and_tells_similar_names_apart() {
    assert_eq!(lease_name("example.com/c", &[]), lease_name("example.com/c", &[]));
    // The slug alone would be the same.
    assert_ne!(lease_name("example.com/c", &[]), lease_name("example-com/c", &[]));
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
    assert_eq!(opts.lease_name, lease_name("c", &[]));
    let fast = LeaderElectionOptions::new("ns", "c", "me", Duration::from_millis(300));
    assert!(fast.retry_period >= Duration::from_millis(50) && fast.renew_deadline < fast.lease_duration);
}

fn gateways(refs: &[&str]) -> Vec<ObjectRef> {
    refs.iter()
        .map(|r| {
            let (namespace, name) = r.split_once('/').unwrap();
            ObjectRef { namespace: namespace.into(), name: name.into() }
        })
        .collect()
}

#[test]
fn lease_name_without_gateways_is_unchanged() {
    // Pinned: existing deployments (no --gateway) must keep their Lease across versions.
    assert_eq!(
        lease_name("cloudflared-routes/gateway-controller", &[]),
        "cloudflared-routes-gateway-controller-8df7b249"
    );
}

#[test]
fn each_gateway_selection_gets_its_own_lease() {
    const C: &str = "cloudflared-routes/gateway-controller";
    let default = lease_name(C, &[]);
    let a = lease_name(C, &gateways(&["infra/a"]));
    let b = lease_name(C, &gateways(&["infra/b"]));
    let both = lease_name(C, &gateways(&["infra/a", "infra/b"]));
    let names = [&default, &a, &b, &both];
    for (i, x) in names.iter().enumerate() {
        assert!(is_dns_label(x), "{x}");
        for y in &names[i + 1..] {
            assert_ne!(x, y, "two selections, one Lease");
        }
    }
    assert!(a.starts_with("cloudflared-routes-gateway-controller-"), "{a}");
    assert_eq!(&a[..default.len()], default, "readable: the controller's name, then the selection's hash");
    // The order and repetition of the flags do not matter.
    assert_eq!(both, lease_name(C, &gateways(&["infra/b", "infra/a", "infra/b"])));
    // Not just the names run together.
    assert_ne!(lease_name(C, &gateways(&["a/bc"])), lease_name(C, &gateways(&["ab/c"])));
    let long = lease_name(&"x.".repeat(80), &gateways(&["infra/a"]));
    assert!(is_dns_label(&long), "{long}");
    let options =
        LeaderElectionOptions::for_gateways("ns", C, &gateways(&["infra/a"]), "me", Duration::from_secs(15));
    assert_eq!(options.lease_name, a);
}

#[test]
fn lease_duration_seconds_round_up() {
    use super::lease_seconds;
    let cases = [
        (Duration::from_millis(1500), 2),
        (Duration::from_secs(15), 15),
        (Duration::from_millis(200), 1),
        (Duration::ZERO, 1),
    ];
    for (duration, seconds) in cases {
        assert_eq!(lease_seconds(duration), seconds, "{duration:?}");
    }
}

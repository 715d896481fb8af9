use std::path::Path;

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

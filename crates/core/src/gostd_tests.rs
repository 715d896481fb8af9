use super::*;

#[test]
fn go_parse_duration_matches_go() {
    let cases: &[(&str, Result<(), &str>)] = &[
        ("0", Ok(())),
        ("-0", Ok(())),
        ("30s", Ok(())),
        ("1m30s", Ok(())),
        ("300ms", Ok(())),
        ("1.5h", Ok(())),
        (".5s", Ok(())),
        ("5.s", Ok(())),
        ("-1h", Ok(())),
        ("1us", Ok(())),
        ("1µs", Ok(())),
        ("2562047h", Ok(())),
        ("2562048h", Err("time: invalid duration \"2562048h\"")),
        ("9223372036854775807ns", Ok(())),
        ("9223372036854775808ns", Err("time: invalid duration")),
        ("-9223372036854775808ns", Ok(())),
        ("", Err("time: invalid duration \"\"")),
        ("-", Err("time: invalid duration \"-\"")),
        ("s", Err("time: invalid duration \"s\"")),
        (".s", Err("time: invalid duration \".s\"")),
        ("00", Err("time: missing unit in duration \"00\"")),
        ("1h2", Err("time: missing unit in duration \"1h2\"")),
        ("1d", Err("time: unknown unit \"d\" in duration \"1d\"")),
    ];
    for (text, expected) in cases {
        let actual = go_parse_duration(text);
        match expected {
            Ok(()) => assert!(actual.is_ok(), "{text:?}: {actual:?}"),
            Err(part) => assert!(actual.as_ref().is_err_and(|e| e.contains(part)), "{text:?}: {actual:?}"),
        }
    }
}

#[test]
fn go_split_host_port_matches_go() {
    let cases = [
        ("example.com", false),
        ("*.example.com", false),
        ("", false),
        ("*", false),
        ("example.com:443", true),
        ("example.com:", true),
        (":80", true),
        ("a:b", true),
        ("[::1]:80", true),
        ("[::1]", false),
        ("::1", false),
        ("a:b:c", false),
        ("[a]b:80", false),
    ];
    for (host, has_port) in cases {
        assert_eq!(go_split_host_port(host), has_port, "{host:?}");
    }
}

#[test]
fn go_url_parse_reads_scheme_host_and_path_like_go() {
    // (raw, scheme, Hostname(), path empty)
    let cases = [
        ("http://a:80", "http", "a", true),
        ("HTTPS://A", "https", "A", true),
        ("http://a:80/", "http", "a", false),
        ("http://a?x=/y", "http", "a", true),
        ("http://u@a:80", "http", "a", true),
        ("http://[::1]:80", "http", "::1", true),
        ("localhost:8080", "localhost", "", true),
        ("//a/b", "", "a", false),
        ("/a", "", "", false),
    ];
    for (raw, scheme, hostname, path_is_empty) in cases {
        let url = go_url_parse(raw).unwrap_or_else(|err| panic!("{raw}: {err}"));
        assert_eq!(url.scheme, scheme, "{raw}");
        assert_eq!(go_url_hostname(&url.host), hostname, "{raw}");
        assert_eq!(url.path_is_empty, path_is_empty, "{raw}");
    }
    for raw in [
        "://a",
        "http://a\n",
        "http://a:b",
        "http://[::1",
        "http://a%2",
        "http://a/%zz",
        "http://a#%",
        "http://u{@a",
    ] {
        assert!(go_url_parse(raw).is_err(), "{raw}");
    }
}

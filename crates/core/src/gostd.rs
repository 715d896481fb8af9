//! Ports of the Go standard-library functions cloudflared relies on when it validates its
//! config: `net.SplitHostPort`, `net.ParseCIDR`, `url.Parse` (with `URL.Hostname` and the checks
//! of `url.unescape`) and `time.ParseDuration`.
//!
//! cloudflared is written in Go, so these mirror Go's behaviour, quirks and error texts
//! included, rather than what Rust's own parsers accept: validation must match what cloudflared
//! does when it starts.

/// `net.SplitHostPort(s) == nil`.
pub(crate) fn go_split_host_port(s: &str) -> bool {
    let Some(last_colon) = s.rfind(':') else { return false };
    let (host_from, port_from) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) if end + 1 == last_colon => (1, end + 1),
            _ => return false, // missing ']', missing port or too many colons
        }
    } else if s[..last_colon].contains(':') {
        return false; // too many colons
    } else {
        (0, 0)
    };
    !s[host_from..].contains('[') && !s[port_from..].contains(']')
}

/// `net.ParseCIDR(s) == nil` (no zones; prefix length within the address size).
pub(crate) fn go_parse_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else { return false };
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else { return false };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|n| n <= max)
}

/// What `validateIngress` reads from a `url.Parse` result.
pub(crate) struct GoUrl {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) path_is_empty: bool,
}

/// Go's `url.Parse`, with its error text (`parse "…": reason`).
pub(crate) fn go_url_parse(raw: &str) -> Result<GoUrl, String> {
    let (without_fragment, fragment) = raw.split_once('#').map_or((raw, None), |(u, f)| (u, Some(f)));
    let url = go_url_parse_reference(without_fragment)
        .map_err(|why| format!("parse {without_fragment:?}: {why}"))?;
    if let Some(fragment) = fragment {
        go_unescape(fragment, false).map_err(|why| format!("parse {raw:?}: {why}"))?;
    }
    Ok(url)
}

fn go_url_parse_reference(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    // getScheme: [A-Za-z][A-Za-z0-9+.-]* followed by ':'.
    let mut scheme = "";
    let mut rest = raw;
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => {
                (scheme, rest) = (&raw[..i], &raw[i + 1..]);
                break;
            }
            _ => break,
        }
    }
    let scheme = scheme.to_ascii_lowercase();
    rest = match rest.strip_suffix('?') {
        Some(stripped) if !stripped.contains('?') => stripped,
        _ => rest.split_once('?').map_or(rest, |(before, _)| before),
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // A rootless path is opaque ("localhost:8080" is scheme "localhost"): no host.
            return Ok(GoUrl { scheme, host: String::new(), path_is_empty: true });
        }
        if rest.split('/').next().is_some_and(|segment| segment.contains(':')) {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut host = String::new();
    if rest.starts_with("//") && (!scheme.is_empty() || !rest.starts_with("///")) {
        let authority = &rest[2..];
        let (authority, path) = authority.find('/').map_or((authority, ""), |i| authority.split_at(i));
        // parseAuthority: the host follows the last '@'.
        let (userinfo, authority_host) = authority.rsplit_once('@').map_or(("", authority), |split| split);
        go_parse_host(authority_host)?;
        if !userinfo.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)) {
            return Err("net/url: invalid userinfo".into());
        }
        go_unescape(userinfo, false)?;
        (host, rest) = (authority_host.to_string(), path);
    }
    go_unescape(rest, false)?;
    Ok(GoUrl { scheme, host, path_is_empty: rest.is_empty() })
}

fn go_parse_host(host: &str) -> Result<(), String> {
    let invalid_port = |port: &str| format!("invalid port {port:?} after host");
    if host.starts_with('[') {
        // (Go checks an RFC 6874 zone, "[fe80::1%25en0]", a little further; we do not.)
        let close = host.rfind(']').ok_or("missing ']' in host")?;
        if !go_valid_optional_port(&host[close + 1..]) {
            return Err(invalid_port(&host[close + 1..]));
        }
    } else if let Some(colon) = host.rfind(':') {
        if !go_valid_optional_port(&host[colon..]) {
            return Err(invalid_port(&host[colon..]));
        }
        // Newer Go also refuses a second colon outside brackets ("localhost:80:80").
        if host[..colon].contains(':') {
            return Err(invalid_port(&host[host.find(':').unwrap_or(colon)..]));
        }
    }
    go_unescape(host, true)
}

fn go_valid_optional_port(port: &str) -> bool {
    port.is_empty() || port.strip_prefix(':').is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `URL.Hostname()`: the host without a valid `:port` and without IPv6 brackets.
pub(crate) fn go_url_hostname(host: &str) -> &str {
    let mut name = host;
    if let Some(colon) = host.rfind(':') {
        if go_valid_optional_port(&host[colon..]) {
            name = &host[..colon];
        }
    }
    name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name)
}

/// The checks of Go's `url.unescape`: well-formed `%XX`; in a host, `%XX` only for non-ASCII
/// bytes (or `%25`) and no ASCII byte outside the allowed set.
fn go_unescape(s: &str, in_host: bool) -> Result<(), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape = &bytes[i..(i + 3).min(bytes.len())];
            let shown = || format!("invalid URL escape {:?}", String::from_utf8_lossy(escape));
            if i + 2 >= bytes.len() || !bytes[i + 1].is_ascii_hexdigit() || !bytes[i + 2].is_ascii_hexdigit()
            {
                return Err(shown());
            }
            if in_host && bytes[i + 1] < b'8' && escape != b"%25" {
                return Err(shown());
            }
            i += 3;
        } else {
            if in_host && bytes[i] < 0x80 && !host_byte_allowed(bytes[i]) {
                return Err(format!("invalid character {:?} in host name", char::from(bytes[i]).to_string()));
            }
            i += 1;
        }
    }
    Ok(())
}

/// `!shouldEscape(b, encodeHost)` for an ASCII byte.
fn host_byte_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&b)
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns us µs μs ms s m
/// h, or "0", at most 1<<63-1 ns; with its error texts.
pub(crate) fn go_parse_duration(orig: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig.strip_prefix(['-', '+']).unwrap_or(orig);
    if s == "0" {
        return Ok(());
    }
    let limit: u128 = if orig.starts_with('-') { 1 << 63 } else { (1 << 63) - 1 };
    let mut total: u128 = 0;
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    loop {
        let (whole, after) = s.split_at(digits(s));
        let (fraction, after) = after.strip_prefix('.').map_or(("", after), |f| f.split_at(digits(f)));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid()); // no digits, e.g. "", ".s" or "s"
        }
        let (unit, next) =
            after.split_at(after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len()));
        let nanos: u128 = match unit {
            "" => return Err(format!("time: missing unit in duration {orig:?}")),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let fraction = fraction.bytes().take(18).rev().fold(0.0, |acc, d| (acc + f64::from(d - b'0')) / 10.0);
        total = total
            .saturating_add(whole.saturating_mul(nanos))
            .saturating_add((fraction * nanos as f64) as u128);
        if total > limit {
            return Err(invalid());
        }
        if next.is_empty() {
            return Ok(());
        }
        s = next;
    }
}

#[cfg(test)]
#[path = "gostd_tests.rs"]
mod tests;

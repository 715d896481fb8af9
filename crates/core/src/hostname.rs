//! Gateway API hostnames: validation, listener × route intersection, and the order that makes
//! cloudflared's first match pick the most specific one.
//!
//! Gateway API (HTTPRoute `spec.hostnames`, Listener `hostname`): "This matches the RFC 1123
//! definition of a hostname with 2 notable exceptions: IPs are not allowed; a hostname may be
//! prefixed with a wildcard label (`*.`). The wildcard label MUST appear by itself as the first
//! label." and "`*.example.com` would match both `test.example.com`, and
//! `foo.test.example.com`, but not `example.com`." cloudflared's `*.` matches the same way and
//! compares case-sensitively, so only lower-case names (which the CRD pattern enforces) are
//! accepted and emitted.

use std::cmp::{Ordering, Reverse};

use compact_str::CompactString;

/// A validated hostname (lower case, no port, no IP).
///
/// The name is a [`CompactString`]: one of up to 24 bytes, as most are, is held inline, so
/// parsing it allocates nothing (a translation parses every distinct route hostname, and
/// frees it after; a `String` cost a `malloc` and a `free` each).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hostname {
    Exact(CompactString),
    /// `*.suffix`, holding `suffix`.
    Wildcard(CompactString),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("{0:?} must not contain a port: every request reaches the tunnel through Cloudflare's edge")]
    Port(String),
    #[error("{0:?} is an IP address; Gateway API hostnames must be DNS names")]
    IpAddress(String),
    #[error("{0:?} must be lower case (the CRD pattern requires it, and cloudflared compares hostnames case-sensitively)")]
    UpperCase(String),
    #[error("{0:?}: a wildcard must be the whole first label, as in \"*.example.com\"")]
    Wildcard(String),
    #[error("{0:?} is not a valid RFC 1123 hostname (lower-case letters, digits, '-' and '.', labels of 1 to 63 characters, 253 characters at most)")]
    Invalid(String),
}

impl Hostname {
    /// Accept exactly what the Gateway API CRD pattern
    /// `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$` accepts, minus
    /// IP addresses; say precisely what is wrong otherwise.
    pub fn parse(value: &str) -> Result<Hostname, HostnameError> {
        let (wildcard, name) = match value.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        if value.len() <= 253 && plain_name(name) {
            return Ok(if wildcard { Hostname::Wildcard(name.into()) } else { Hostname::Exact(name.into()) });
        }
        Hostname::parse_checked(value)
    }

    /// [`Hostname::parse`], every rule in turn, naming the first one `value` breaks.
    fn parse_checked(value: &str) -> Result<Hostname, HostnameError> {
        let err = |make: fn(String) -> HostnameError| Err(make(value.to_string()));
        if value.contains(':') {
            return err(HostnameError::Port);
        }
        let (wildcard, name) = match value.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        if name.contains('*') {
            return err(HostnameError::Wildcard);
        }
        if value.is_empty() || value.len() > 253 {
            return err(HostnameError::Invalid);
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            return err(HostnameError::UpperCase);
        }
        if !name.split('.').all(dns_label) {
            return err(HostnameError::Invalid);
        }
        let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !wildcard && numeric && name.parse::<std::net::Ipv4Addr>().is_ok() {
            return err(HostnameError::IpAddress);
        }
        Ok(if wildcard { Hostname::Wildcard(name.into()) } else { Hostname::Exact(name.into()) })
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Hostname::Wildcard(_))
    }

    /// The name as written in YAML (`*.example.com` for a wildcard).
    pub fn as_string(&self) -> String {
        match self {
            Hostname::Exact(name) => name.to_string(),
            Hostname::Wildcard(suffix) => format!("*.{suffix}"),
        }
    }

    /// Number of characters as written (the Gateway API precedence counts characters).
    pub fn char_count(&self) -> usize {
        match self {
            Hostname::Exact(name) => name.len(),
            Hostname::Wildcard(suffix) => suffix.len() + 2,
        }
    }

    pub fn labels(&self) -> usize {
        match self {
            Hostname::Exact(name) => name.split('.').count(),
            Hostname::Wildcard(suffix) => suffix.split('.').count() + 1,
        }
    }

    /// Does this pattern match the request host `host` (lower case, no port)?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Hostname::Exact(name) => name == host,
            Hostname::Wildcard(suffix) => is_subdomain(host, suffix),
        }
    }

    /// Is every host this pattern matches also matched by `other`?
    pub fn is_covered_by(&self, other: &Hostname) -> bool {
        match (self, other) {
            (_, Hostname::Exact(o)) => matches!(self, Hostname::Exact(s) if s == o),
            (Hostname::Exact(s), Hostname::Wildcard(o)) => is_subdomain(s, o),
            (Hostname::Wildcard(s), Hostname::Wildcard(o)) => s == o || is_subdomain(s, o),
        }
    }

    /// Can one request host match both patterns?
    pub fn overlaps(&self, other: &Hostname) -> bool {
        self.is_covered_by(other) || other.is_covered_by(self)
    }

    /// The wildcard patterns that would cover this one, most specific first
    /// (`a.b.c` → `*.b.c`, `*.c`), for looking up earlier catch-alls.
    pub fn covering_wildcards(&self) -> impl Iterator<Item = Hostname> + '_ {
        let name = match self {
            Hostname::Exact(name) => name.as_str(),
            Hostname::Wildcard(suffix) => suffix.as_str(),
        };
        let own = self.is_wildcard().then(|| Hostname::Wildcard(name.into()));
        own.into_iter()
            .chain(name.match_indices('.').map(move |(i, _)| Hostname::Wildcard(name[i + 1..].into())))
    }
}

/// One pass over a name that is valid as it stands, which is almost every name: labels of 1 to
/// 63 bytes of `[a-z0-9-]`, none starting or ending with `-`, and a letter or `-` somewhere
/// (so it cannot be an IPv4 address). `false` says nothing: [`Hostname::parse_checked`]
/// decides, and names the rule broken.
///
/// Each byte is two table look-ups: its class ([`NAME_CLASS`]), then what that class says after
/// the class before it ([`NAME_PAIR`]), gathered. A label's bounds are the pairs around a dot
/// (the name is taken to start after one and to end before [`END`]); a name of more than 63
/// bytes, which could hold a label too long, is left to the rules.
fn plain_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() > 63 {
        return false;
    }
    // The index is masked to the table's size, so that it needs no bounds check.
    let pair = |before: usize, class: u8| NAME_PAIR[(before | usize::from(class)) & 63];
    let (mut seen, mut before) = (0u8, usize::from(DOT) << 3);
    for &c in b {
        let class = NAME_CLASS[usize::from(c)];
        seen |= pair(before, class);
        before = usize::from(class) << 3;
    }
    seen |= pair(before, END);
    seen & (NAME_OTHER | NAME_BAD_LABEL) == 0 && seen & NAME_NOT_NUMERIC != 0
}

/// [`NAME_CLASS`] classes, and the end of the name.
const DIGIT: u8 = 0;
const LETTER: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 3;
const OTHER: u8 = 4;
const END: u8 = 5;

/// `[0-9]` a digit, `[a-z]` a letter, `-` a dash, `.` a dot, anything else other.
const NAME_CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_lowercase() {
            table[b] = LETTER;
        } else if c.is_ascii_digit() {
            table[b] = DIGIT;
        }
        b += 1;
    }
    table[b'-' as usize] = DASH;
    table[b'.' as usize] = DOT;
    table
};

/// [`NAME_PAIR`] findings, one bit each.
const NAME_NOT_NUMERIC: u8 = 1;
const NAME_OTHER: u8 = 2;
const NAME_BAD_LABEL: u8 = 4;

/// What a byte of a class says after a byte of a class (`before << 3 | class`): a letter or a
/// dash, that the name is not numeric; another byte, that the name is not plain; a dot or the
/// end after a dot (an empty label) or a dash (a label ending with `-`), or a dash after a dot
/// (a label starting with `-`), that a label is bad.
const NAME_PAIR: [u8; 64] = {
    let mut table = [0u8; 64];
    let mut before = 0;
    while before < 8 {
        let mut class = 0;
        while class < 8 {
            let (b, c) = (before as u8, class as u8);
            let mut found = 0;
            if c == LETTER || c == DASH {
                found |= NAME_NOT_NUMERIC;
            }
            if c == OTHER {
                found |= NAME_OTHER;
            }
            if (b == DOT && (c == DOT || c == DASH || c == END)) || (b == DASH && (c == DOT || c == END)) {
                found |= NAME_BAD_LABEL;
            }
            table[before << 3 | class] = found;
            class += 1;
        }
        before += 1;
    }
    table
};

/// An RFC 1123 label: 1 to 63 of `[a-z0-9-]`, not starting or ending with `-`. Kubernetes
/// requires it of namespaces and Service names too.
pub fn dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

impl std::fmt::Display for Hostname {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

#[inline]
fn is_subdomain(host: &str, suffix: &str) -> bool {
    let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
    host.len() > suffix.len() + 1
        && short_eq(&host[host.len() - suffix.len()..], suffix)
        && host[host.len() - suffix.len() - 1] == b'.'
}

/// `a == b`, without a call to `memcmp` when they have at most 32 bytes, as most hostnames and
/// namespaces do: for those a call costs more than the compare, which translation makes for
/// every route (hostnames against listeners', keys of its tables). Loads that together cover
/// the bytes, overlapping when there are fewer than their sum; longer ones as slices.
#[inline]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

/// The hostname a route hostname takes on a listener, or `None` when they do not intersect.
///
/// Gateway API: a listener `*.example.com` accepts route hostnames `test.example.com` and
/// `*.example.com`; between two wildcards the more specific one is the intersection; a route
/// `*.example.com` on a listener `foo.example.com` gives `foo.example.com`.
/// The intersection is always one of the two: it is returned, not copied.
///
/// The route's hostname when the listener covers it ([`Hostname::is_covered_by`]), else the
/// listener's when the route covers it, else none; each pair of forms asks only what can hold
/// (an exact name covers only itself, so two names are compared once, not twice).
///
/// Always inline: translation asks it for every route on every listener the route's
/// parentRef reaches, and inlined it is a few compares instead of a call.
#[inline(always)]
pub fn intersect<'h>(listener: Option<&'h Hostname>, route: &'h Hostname) -> Option<&'h Hostname> {
    let Some(listener) = listener else { return Some(route) };
    match (listener, route) {
        (Hostname::Exact(l), Hostname::Exact(r)) => short_eq(l.as_bytes(), r.as_bytes()).then_some(route),
        (Hostname::Exact(l), Hostname::Wildcard(r)) => is_subdomain(l, r).then_some(listener),
        (Hostname::Wildcard(l), Hostname::Exact(r)) => is_subdomain(r, l).then_some(route),
        (Hostname::Wildcard(l), Hostname::Wildcard(r)) => {
            if short_eq(l.as_bytes(), r.as_bytes()) || is_subdomain(r, l) {
                Some(route)
            } else {
                is_subdomain(l, r).then_some(listener)
            }
        }
    }
}

/// Order among hostnames for first-match: exact names before wildcards, then more characters
/// first (Gateway API: "Largest number of characters in a matching non-wildcard hostname;
/// largest number of characters in a matching hostname"), `None` (all hosts) last, then the
/// name itself so that the order is total.
pub fn specificity_cmp(a: Option<&Hostname>, b: Option<&Hostname>) -> Ordering {
    fn key(h: Option<&Hostname>) -> (u8, Reverse<usize>, Option<&Hostname>) {
        match h {
            Some(h @ Hostname::Exact(_)) => (0, Reverse(h.char_count()), Some(h)),
            Some(h @ Hostname::Wildcard(_)) => (1, Reverse(h.char_count()), Some(h)),
            None => (2, Reverse(0), None),
        }
    }
    key(a).cmp(&key(b))
}

/// Order among listener hostnames: the most specific listener first ("exact hostname, then
/// wildcards with more labels, then none"), so that its block and fence come before any
/// broader listener's rules.
pub fn listener_cmp(a: Option<&Hostname>, b: Option<&Hostname>) -> Ordering {
    fn key(h: Option<&Hostname>) -> (u8, Reverse<usize>, Option<&Hostname>) {
        match h {
            Some(h @ Hostname::Exact(_)) => (0, Reverse(0), Some(h)),
            Some(h @ Hostname::Wildcard(_)) => (1, Reverse(h.labels()), Some(h)),
            None => (2, Reverse(0), None),
        }
    }
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// [`intersect`] is the route's hostname when the listener's covers it, else the
        /// listener's when the route's covers it, else none: names around shared suffixes,
        /// equal names, wildcards of both.
        #[test]
        fn intersect_is_the_covered_one(
            listener in proptest::option::of("(\\*\\.)?(a|b|a\\.b|b\\.a|x\\.a\\.b|ab|b\\.ab)"),
            route in "(\\*\\.)?(a|b|a\\.b|b\\.a|x\\.a\\.b|ab|b\\.ab)",
        ) {
            let listener = listener.map(|l| Hostname::parse(&l).unwrap());
            let route = Hostname::parse(&route).unwrap();
            let expected = match &listener {
                None => Some(&route),
                Some(l) if route.is_covered_by(l) => Some(&route),
                Some(l) if l.is_covered_by(&route) => Some(l),
                Some(_) => None,
            };
            let got = intersect(listener.as_ref(), &route);
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert!(got.is_none_or(|h| std::ptr::eq(h, expected.unwrap())));
        }
    }

    proptest::proptest! {
        /// The one-pass check never decides otherwise than the rules checked one by one.
        #[test]
        fn parse_agrees_with_every_rule_checked_in_turn(
            value in "(\\*\\.)?([a-z0-9-]{0,8}\\.){0,3}[a-zA-Z0-9*:_-]{0,8}|\\PC{0,20}|[0-9.]{1,15}|[a-z-]{60,66}(\\.[a-z]{1,3})?|(\\*\\.)?[a-z0-9.-]{0,24}|([a-z0-9-]{62,64}\\.){0,2}[a-z0-9-]{62,64}"
        ) {
            proptest::prop_assert_eq!(Hostname::parse(&value), Hostname::parse_checked(&value));
        }
    }

    use super::*;

    fn h(s: &str) -> Hostname {
        Hostname::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_accepts_and_rejects_like_the_crd() {
        type Expected = Option<fn(String) -> HostnameError>;
        let cases: &[(&str, &str, Expected)] = &[
            ("plain_name", "api.example.com", None),
            ("single_label", "localhost", None),
            ("wildcard", "*.example.com", None),
            ("digits_and_dashes", "a-1.b2.example", None),
            ("port_is_rejected", "api.example.com:443", Some(HostnameError::Port)),
            ("ip_is_rejected", "10.0.0.1", Some(HostnameError::IpAddress)),
            ("uppercase_is_rejected", "API.example.com", Some(HostnameError::UpperCase)),
            ("star_not_first_is_rejected", "api.*.example.com", Some(HostnameError::Wildcard)),
            ("bare_star_is_rejected", "*", Some(HostnameError::Wildcard)),
            ("star_inside_label_is_rejected", "*api.example.com", Some(HostnameError::Wildcard)),
            ("unicode_is_rejected", "bücher.example", Some(HostnameError::Invalid)),
            ("underscore_is_rejected", "a_b.example.com", Some(HostnameError::Invalid)),
            ("empty_label_is_rejected", "a..example.com", Some(HostnameError::Invalid)),
            ("leading_dash_is_rejected", "-a.example.com", Some(HostnameError::Invalid)),
            ("newline_is_rejected", "a.example.com\n", Some(HostnameError::Invalid)),
            ("empty_is_rejected", "", Some(HostnameError::Invalid)),
            ("too_long_label_is_rejected", &format!("{}.com", "a".repeat(64)), Some(HostnameError::Invalid)),
        ];
        for (name, input, expected) in cases {
            let got = Hostname::parse(input);
            match expected {
                None => assert!(got.is_ok(), "{name}: {input:?} rejected: {got:?}"),
                Some(make) => assert_eq!(got, Err(make(input.to_string())), "{name}"),
            }
        }
    }

    #[test]
    fn wildcard_never_matches_apex() {
        let w = h("*.example.com");
        assert!(!w.matches("example.com"));
        assert!(w.matches("a.example.com"));
        assert!(w.matches("a.b.example.com"), "a wildcard spans several labels");
        assert!(!w.matches("aexample.com"), "suffix must start at a label boundary");
    }

    #[test]
    fn intersection_follows_gateway_api() {
        let cases: &[(&str, Option<&str>, &str, Option<&str>)] = &[
            ("no_listener_hostname_keeps_route", None, "first.com", Some("first.com")),
            ("exact_equal", Some("very.specific.com"), "very.specific.com", Some("very.specific.com")),
            ("exact_differs", Some("very.specific.com"), "non.matching.com", None),
            (
                "route_wildcard_narrows_to_listener",
                Some("very.specific.com"),
                "*.specific.com",
                Some("very.specific.com"),
            ),
            (
                "exact_under_listener_wildcard",
                Some("*.wildcard.io"),
                "foo.bar.wildcard.io",
                Some("foo.bar.wildcard.io"),
            ),
            ("apex_not_under_listener_wildcard", Some("*.wildcard.io"), "wildcard.io", None),
            ("same_wildcards", Some("*.example.com"), "*.example.com", Some("*.example.com")),
            (
                "listener_wildcard_more_specific",
                Some("*.foo.example.com"),
                "*.example.com",
                Some("*.foo.example.com"),
            ),
            (
                "route_wildcard_more_specific",
                Some("*.example.com"),
                "*.foo.example.com",
                Some("*.foo.example.com"),
            ),
            ("unrelated_wildcards", Some("*.wildcard.io"), "*.nonmatchingwildcard.io", None),
            ("listener_exact_route_unrelated_wildcard", Some("bar.com"), "*.example.com", None),
        ];
        for (name, listener, route, expected) in cases {
            let listener = listener.map(h);
            let route = h(route);
            let got = intersect(listener.as_ref(), &route).cloned();
            assert_eq!(got, expected.map(h), "{name}");
        }
    }

    #[test]
    fn exact_listener_sorts_before_wildcards_with_more_labels_first() {
        let mut listeners =
            [None, Some(h("*.example.com")), Some(h("abc.foo.example.com")), Some(h("*.foo.example.com"))];
        listeners.sort_by(|a, b| listener_cmp(a.as_ref(), b.as_ref()));
        let names: Vec<_> = listeners.iter().map(|l| l.as_ref().map(Hostname::as_string)).collect();
        assert_eq!(
            names,
            [
                Some("abc.foo.example.com".into()),
                Some("*.foo.example.com".into()),
                Some("*.example.com".into()),
                None
            ]
        );
    }

    #[test]
    fn exact_route_hostname_beats_longer_wildcard() {
        let mut hosts =
            [None, Some(h("*.very.long.example.com")), Some(h("a.example.com")), Some(h("*.example.com"))];
        hosts.sort_by(|a, b| specificity_cmp(a.as_ref(), b.as_ref()));
        let names: Vec<_> = hosts.iter().map(|x| x.as_ref().map(Hostname::as_string)).collect();
        assert_eq!(
            names,
            [
                Some("a.example.com".into()),
                Some("*.very.long.example.com".into()),
                Some("*.example.com".into()),
                None
            ]
        );
    }

    #[test]
    fn covering_wildcards_lists_every_suffix() {
        let got: Vec<_> = h("a.b.c").covering_wildcards().map(|w| w.as_string()).collect();
        assert_eq!(got, ["*.b.c", "*.c"]);
        let got: Vec<_> = h("*.b.c").covering_wildcards().map(|w| w.as_string()).collect();
        assert_eq!(got, ["*.b.c", "*.c"]);
    }

    #[test]
    fn overlap_is_symmetric() {
        assert!(h("a.example.com").overlaps(&h("*.example.com")));
        assert!(h("*.example.com").overlaps(&h("a.example.com")));
        assert!(h("*.a.example.com").overlaps(&h("*.example.com")));
        assert!(!h("example.com").overlaps(&h("*.example.com")));
        assert!(!h("a.com").overlaps(&h("b.com")));
    }
}

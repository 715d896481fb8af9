use super::hash::{hashed, META_BYTE};
use super::*;

fn prefix(v: &str) -> PathMatch {
    PathMatch { kind: PathKind::PathPrefix, value: v.into() }
}
fn exact(v: &str) -> PathMatch {
    PathMatch { kind: PathKind::Exact, value: v.into() }
}
fn regex(v: &str) -> PathMatch {
    PathMatch { kind: PathKind::RegularExpression, value: v.into() }
}

/// Does the emitted regex, searched unanchored as cloudflared does, match `path` (already
/// decoded)? `None` (no constraint) matches everything.
fn serves(expr: &Option<String>, path: &str) -> bool {
    expr.as_ref().is_none_or(|e| regex::Regex::new(e).unwrap().is_match(path))
}

#[test]
fn http_paths_match_exactly_what_gateway_api_says() {
    // (case, match, request path, expected)
    let cases: &[(&str, PathMatch, &str, bool)] = &[
        ("exact_matches_itself", exact("/one"), "/one", true),
        ("exact_rejects_trailing_slash", exact("/two"), "/two/", false),
        ("exact_is_case_sensitive", exact("/two"), "/Two", false),
        ("exact_rejects_child", exact("/one"), "/one/example", false),
        ("exact_is_anchored_at_start", exact("/api"), "/v2/api", false),
        ("exact_escapes_dot", exact("/a.b"), "/axb", false),
        ("exact_root", exact("/"), "/", true),
        ("exact_root_rejects_other", exact("/"), "/x", false),
        ("prefix_matches_itself", prefix("/abc"), "/abc", true),
        ("prefix_matches_trailing_slash", prefix("/abc"), "/abc/", true),
        ("prefix_matches_child", prefix("/abc"), "/abc/x/y", true),
        ("prefix_is_element_wise", prefix("/abc"), "/abcd", false),
        ("prefix_is_anchored", prefix("/api"), "/v2/api", false),
        ("prefix_trailing_slash_ignored", prefix("/match/"), "/match", true),
        ("prefix_trailing_slash_still_element_wise", prefix("/v2/"), "/v2example", false),
        ("prefix_child_with_decoded_newline", prefix("/a"), "/a/x\ny", true),
        ("prefix_root_matches_all", prefix("/"), "/anything", true),
        ("percent_decoded_literal", exact("/a%20b"), "/a b", true),
        ("percent_decoded_unreserved", exact("/%41"), "/A", true),
        ("regex_meta_escaped_in_prefix", prefix("/a+b(c)"), "/a+b(c)/d", true),
        ("regex_meta_not_interpreted", prefix("/a+b"), "/aab", false),
        ("regex_is_anchored", regex("/v[0-9]+"), "/x/v1", false),
        ("regex_must_match_whole_path", regex("/v[0-9]+"), "/v1/x", false),
        ("regex_matches", regex("/v[0-9]+"), "/v12", true),
        ("regex_alternation_stays_anchored", regex("/a|/b"), "/b/c", false),
    ];
    for (name, m, path, expected) in cases {
        let expr = http_path(m).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serves(&expr, path), *expected, "{name}: {m:?} as {expr:?} on {path:?}");
    }
}

#[test]
fn prefix_root_has_no_path_constraint() {
    assert_eq!(http_path(&prefix("/")).unwrap(), None);
    assert!(http_path(&prefix("///")).is_err(), "'//' is refused by the schema");
}

#[test]
fn values_the_schema_refuses_are_errors() {
    let cases: &[(&str, PathMatch)] = &[
        ("relative_path", exact("api")),
        ("double_slash", prefix("/a//b")),
        ("dot_segment", prefix("/a/./b")),
        ("dot_dot_end", exact("/a/..")),
        ("encoded_slash", exact("/a%2Fb")),
        ("encoded_slash_lower", exact("/a%2fb")),
        ("fragment", exact("/a#b")),
        ("space", exact("/a b")),
        ("newline", exact("/a\nb")),
        ("bad_escape", exact("/a%zz")),
        ("truncated_escape", exact("/a%4")),
        ("not_utf8", exact("/a%ff")),
        ("lookahead_regex", regex("/a(?=b)")),
        ("backreference_regex", regex("/(a)\\1")),
        ("unbalanced_regex_escaping_anchors", regex("a)|(b")),
        ("regex_longer_than_the_schema_allows", regex(&format!("/{}", "a".repeat(1024)))),
        ("literal_longer_than_the_schema_allows", exact(&format!("/{}", "a".repeat(1024)))),
    ];
    for (name, m) in cases {
        assert!(http_path(m).is_err(), "{name}: {m:?} was accepted as {:?}", http_path(m));
    }
}

#[test]
fn escape_writes_control_characters_as_hex() {
    assert_eq!(escape("a\nb"), "a\\x{a}b");
    assert_eq!(escape("a.b*c"), "a\\.b\\*c");
    assert_eq!(escape("ü"), "ü");
}

fn method(kind: MethodKind, service: Option<&str>, method: Option<&str>) -> GrpcMethodMatch {
    GrpcMethodMatch { kind, service: service.map(Into::into), method: method.map(Into::into) }
}

#[test]
fn grpc_methods_map_to_anchored_http2_paths() {
    use MethodKind::*;
    let cases: &[(&str, Option<GrpcMethodMatch>, &str, bool)] = &[
        ("service_and_method", Some(method(Exact, Some("pkg.Svc"), Some("Get"))), "/pkg.Svc/Get", true),
        (
            "service_and_method_other_method",
            Some(method(Exact, Some("pkg.Svc"), Some("Get"))),
            "/pkg.Svc/GetAll",
            false,
        ),
        ("service_dot_is_literal", Some(method(Exact, Some("pkg.Svc"), None)), "/pkgxSvc/Get", false),
        ("service_only", Some(method(Exact, Some("pkg.Svc"), None)), "/pkg.Svc/Anything", true),
        (
            "service_only_not_prefix_of_other_service",
            Some(method(Exact, Some("pkg.Svc"), None)),
            "/pkg.SvcTwo/Get",
            false,
        ),
        ("service_only_needs_a_method", Some(method(Exact, Some("pkg.Svc"), None)), "/pkg.Svc/", false),
        ("method_only", Some(method(Exact, None, Some("Get"))), "/any.Svc/Get", true),
        ("method_only_other", Some(method(Exact, None, Some("Get"))), "/any.Svc/Put", false),
        ("regex_service", Some(method(RegularExpression, Some("pkg\\..*"), None)), "/pkg.A/M", true),
        ("regex_method", Some(method(RegularExpression, None, Some("Get.*"))), "/a.B/GetX", true),
        ("regex_method_anchored", Some(method(RegularExpression, None, Some("Get"))), "/a.B/XGet", false),
        ("no_method_matches_all", None, "/x.Y/Z", true),
    ];
    for (name, m, path, expected) in cases {
        let expr = grpc_path(m.as_ref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serves(&expr, path), *expected, "{name}: {m:?} as {expr:?} on {path:?}");
    }
}

#[test]
fn invalid_grpc_matches_are_errors() {
    use MethodKind::*;
    let cases: &[(&str, GrpcMethodMatch)] = &[
        ("neither_service_nor_method", method(Exact, None, None)),
        ("service_with_slash", method(Exact, Some("a/b"), None)),
        ("method_with_dot", method(Exact, Some("a"), Some("b.c"))),
        ("service_with_regex_chars_as_exact", method(Exact, Some("a.*"), None)),
        ("bad_regex", method(RegularExpression, Some("(a"), None)),
        ("service_longer_than_the_schema_allows", method(Exact, Some(&"a".repeat(1025)), None)),
        (
            "method_regex_longer_than_the_schema_allows",
            method(RegularExpression, None, Some(&"a".repeat(1025))),
        ),
        // Anchors inside a part can never match within `/service/method`.
        ("anchored_service_regex", method(RegularExpression, Some("^pkg\\.Svc$"), None)),
        ("anchor_in_an_alternative", method(RegularExpression, Some("pkg\\.A|^pkg\\.B"), None)),
        ("start_anchor_in_method", method(RegularExpression, Some("a.b"), Some("^Get"))),
        ("end_anchor_escape_in_service", method(RegularExpression, Some("a\\.b\\z"), None)),
    ];
    for (name, m) in cases {
        assert!(grpc_path(Some(m)).is_err(), "{name}: accepted");
    }
    // The anchor is found after a flag group Go reads and regex-syntax does not.
    for (service, method_regex) in [(Some("(?)^pkg\\.Svc"), None), (None, Some("(?ii)^Get"))] {
        let m = method(RegularExpression, service, method_regex);
        let anchored = matches!(grpc_path(Some(&m)), Err(PathError::GrpcAnchor { .. }));
        assert!(anchored, "{m:?}: {:?}", grpc_path(Some(&m)));
    }
    let m = method(Exact, Some(&"a".repeat(1024)), Some("M"));
    assert!(grpc_path(Some(&m)).is_ok(), "1024 characters are allowed");
    // `^` and `$` as literal characters, escaped or in a class, are no anchors; an end at the
    // end of the method holds (the path ends there).
    let m = method(RegularExpression, Some("pkg\\.S[$^]?"), Some("Get\\$?$"));
    assert!(grpc_path(Some(&m)).is_ok(), "{:?}", grpc_path(Some(&m)));
}

#[test]
fn path_rank_orders_exact_regex_prefix_then_any() {
    let ranked = |m: PathMatch| {
        let r = http_path(&m).unwrap();
        PathRank::http(&m, r.as_deref())
    };
    let mut ranks = [
        (ranked(prefix("/")), "any"),
        (ranked(prefix("/match/")), "short prefix"),
        (ranked(prefix("/match/prefix/one")), "long prefix"),
        (ranked(regex("/m.*")), "regex"),
        (ranked(exact("/match")), "short exact"),
        (ranked(exact("/match/exact/one")), "long exact"),
    ];
    ranks.sort();
    let order: Vec<_> = ranks.iter().map(|(_, n)| *n).collect();
    assert_eq!(order, ["long exact", "short exact", "regex", "long prefix", "short prefix", "any"]);
}

#[test]
fn grpc_rank_prefers_longer_service_then_longer_method() {
    use MethodKind::*;
    let ranked = |m: GrpcMethodMatch| {
        let r = grpc_path(Some(&m)).unwrap();
        PathRank::grpc(Some(&m), r.as_deref())
    };
    let mut ranks = [
        (PathRank::grpc(None, None), "all"),
        (ranked(method(Exact, None, Some("GetUser"))), "method only"),
        (ranked(method(Exact, Some("pkg.UserService"), None)), "service only"),
        (ranked(method(Exact, Some("pkg.UserService"), Some("GetUser"))), "service and method"),
        // Characters count, not the type: a regular expression naming the service comes before
        // an exact method-only match (it would otherwise never serve `/pkg.Svc/Get`).
        (ranked(method(RegularExpression, Some("pkg\\.Svc"), Some("Get"))), "regex service and method"),
    ];
    ranks.sort();
    let order: Vec<_> = ranks.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        order,
        ["service and method", "service only", "regex service and method", "method only", "all"]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// The one-pass check of literal paths only ever says yes to what every CRD rule accepts,
    /// and then nothing needs decoding.
    #[test]
    fn plain_literals_pass_every_rule(
        parts in proptest::collection::vec(proptest::sample::select(vec![
            "/", "a", "Z", "9", ".", "..", "-", "_", "~", "%", "%2f", "%41", "%e9", "#", " ", "é", "*", "(", "@",
        ]), 0..12)
    ) {
        let value: String = parts.concat();
        if plain_literal(&value) {
            proptest::prop_assert_eq!(literal_checked(&value), Ok(std::borrow::Cow::Borrowed(value.as_str())));
        }
    }

    /// The word-at-a-time check says yes exactly to the values of 4 bytes or more whose bytes
    /// the byte loop finds to be letters, digits and `/` with no `//`, and its yes is then
    /// what the byte loop gives: nothing but `/`s (if any) to see.
    #[test]
    fn simple_literals_are_what_the_byte_loop_finds(
        bytes in proptest::collection::vec(proptest::sample::select(vec![
            b'/', b'/', b'/', b'a', b'z', b'A', b'Z', b'0', b'9', b'_', b'.', b'-', b'~', b'%', b'@', b'`',
            b'[', b'{', b':', b' ', 0, 0x7f, 0x80, 0xc3, 0xff,
        ]), 0..40)
    ) {
        let simple = bytes.len() >= 4
            && bytes.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'/')
            && !bytes.windows(2).any(|w| w == b"//");
        proptest::prop_assert_eq!(simple_literal(&bytes), simple, "{:?}", bytes);
        if simple {
            proptest::prop_assert_eq!(literal_classes(&bytes) | LITERAL_SLASH, LITERAL_SLASH);
        }
    }

    /// The one-pass path and rank of a literal are what the long way gives, errors included,
    /// appended after what the string held, which is left as it was without a path.
    #[test]
    fn appended_paths_agree_with_the_long_way(
        kind in proptest::sample::select(vec![PathKind::Exact, PathKind::PathPrefix, PathKind::RegularExpression]),
        parts in proptest::collection::vec(proptest::sample::select(vec![
            "/", "/", "a", "Z", "9", ".", "..", "-", "_", "~", "%", "%2f", "%41", "%e9", "#", " ", "é", "*", "(",
            ")", "@", "$", "&", "+", "[", "\\", "?", "|", "{", "!", ";", "=", ":", "'", ",", "\n",
        ]), 0..12)
    ) {
        let m = PathMatch { kind, value: parts.concat().into() };
        let mut out = String::from("left over");
        let ranked = http_path_append(&m, &mut out).map(|(path, rank, hash)| {
            let path = path.map(|p| out[p.start as usize..p.end as usize].to_string());
            // The hash given is the hash of the path written (0 for none).
            assert_eq!(hash, path.as_ref().map_or(0, path_hash), "{m:?}");
            (path, rank)
        });
        proptest::prop_assert_eq!(
            &out[..],
            format!("left over{}", ranked.as_ref().ok().and_then(|r| r.0.as_deref()).unwrap_or(""))
        );
        let long = http_path(&m).map(|path| {
            let rank = PathRank::http(&m, path.as_deref());
            (path, rank)
        });
        proptest::prop_assert_eq!(ranked, long, "{:?}", m);
    }

    /// What a path's hash is taken of gives the path back, so two different paths never hash
    /// the same bytes (equal hashes only by chance): escaped literals (hashed unescaped), gRPC
    /// methods, patterns and stray backslashes alike.
    #[test]
    fn hashed_parts_tell_paths_apart(
        parts in proptest::collection::vec(proptest::sample::select(vec![
            "^", "$", "(?:", ")$", "(?s:/.*)?$", "(?s:/.*)?", "\\", "\\.", "\\-", "\\x{e9}", ".", "-", "/",
            "a", "é", "[^/]+", "(", ")", "?", "~",
        ]), 0..10)
    ) {
        let path = parts.concat();
        let (form, bytes) = hashed(path.as_bytes());
        let escaped = |literal: &[u8]| {
            let mut out = Vec::new();
            for &b in literal {
                if regex_syntax::is_meta_character(char::from(b)) {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out
        };
        let between = |head: &[u8], middle: &[u8], tail: &[u8]| [head, middle, tail].concat();
        let rebuilt = match form {
            PathForm::Other => bytes.to_vec(),
            PathForm::Regex => between(b"^(?:", &bytes, b")$"),
            PathForm::Prefix => between(b"^", &escaped(&bytes), PREFIX_TAIL.as_bytes()),
            PathForm::Exact => between(b"^", &escaped(&bytes), b"$"),
            PathForm::PrefixPattern => between(b"^", &bytes, PREFIX_TAIL.as_bytes()),
            PathForm::ExactPattern => between(b"^", &bytes, b"$"),
        };
        proptest::prop_assert_eq!(String::from_utf8(rebuilt).unwrap(), path);
    }

    /// The ASCII shortcut of escaping writes what the character-by-character escape writes.
    #[test]
    fn ascii_escape_shortcut_agrees(value in "[ -~]{0,24}") {
        let mut fast = String::new();
        escape_into(&mut fast, &value);
        let mut slow = String::new();
        for c in value.chars() {
            // Through the general path: one character with a non-ASCII neighbour removed.
            let mut one = String::new();
            escape_into(&mut one, &format!("{c}\u{e9}"));
            slow.push_str(one.trim_end_matches('\u{e9}'));
        }
        proptest::prop_assert_eq!(fast, slow);
    }
}

#[test]
fn literal_byte_classes_match_regex_syntax() {
    for b in 0..=255u8 {
        let expected = match (PLAIN_PATH_BYTE[b as usize], b) {
            (false, _) => LITERAL_OTHER,
            (true, b'/') => LITERAL_SLASH,
            (true, b'.') => LITERAL_META | LITERAL_DOT,
            (true, _) if regex_syntax::is_meta_character(char::from(b)) => LITERAL_META,
            (true, _) => 0,
        };
        assert_eq!(LITERAL_BYTE[b as usize], expected, "{:?}", char::from(b));
    }
}

#[test]
fn meta_bytes_are_regex_syntax_meta_characters() {
    for b in 0..=255u8 {
        let c = char::from(b);
        assert_eq!(META_BYTE[b as usize], regex_syntax::is_meta_character(c), "{c:?}");
    }
}

#[test]
fn escaped_literals_hash_as_their_literal_and_patterns_as_written() {
    // An exact path and a gRPC method of two names: the literal; a pattern as written, in a
    // form of its own, so `^/(?:a.b)/(?:c)$` is not taken for the literal of `^/\(\?:a...`.
    let cases: &[(&str, PathForm, &str)] = &[
        ("^/a\\.b\\-c/$", PathForm::Exact, "/a.b-c/"),
        ("^/a\\(b\\)(?s:/.*)?$", PathForm::Prefix, "/a(b)"),
        ("^/pkg\\.Svc/Get$", PathForm::Exact, "/pkg.Svc/Get"),
        ("^/pkg\\.Svc/[^/]+$", PathForm::ExactPattern, "/pkg\\.Svc/[^/]+"),
        ("^/(?:a.b)/(?:c)$", PathForm::ExactPattern, "/(?:a.b)/(?:c)"),
        ("^/a\\x{e9}$", PathForm::ExactPattern, "/a\\x{e9}"),
        ("^/a\\$", PathForm::ExactPattern, "/a\\"),
        ("^(?:/a.b)$", PathForm::Regex, "/a.b"),
    ];
    for (path, form, bytes) in cases {
        let (got_form, got) = hashed(path.as_bytes());
        assert_eq!((got_form, &got[..]), (*form, bytes.as_bytes()), "{path}");
    }
}

#[test]
fn ranked_paths_of_ordinary_values() {
    // (match, path, rank parts)
    type Case = (PathMatch, Option<&'static str>, (u8, usize, usize));
    let cases: &[Case] = &[
        (exact("/"), Some("^/$"), (0, 0, 0)),
        (exact("/a.b-c/"), Some("^/a\\.b\\-c/$"), (0, 6, 0)),
        (prefix("/"), None, (3, 0, 0)),
        (prefix("/api/"), Some("^/api(?s:/.*)?$"), (2, 4, 0)),
        (prefix("/a(b)~$"), Some("^/a\\(b\\)\\~\\$(?s:/.*)?$"), (2, 7, 0)),
        (prefix("/%61pi"), Some("^/api(?s:/.*)?$"), (2, 4, 0)),
        (regex("/v[0-9]+/"), Some("^(?:/v[0-9]+/)$"), (1, 8, 0)),
    ];
    for (m, path, rank) in cases {
        let mut out = String::from("left over");
        let (range, got, hash) = http_path_append(m, &mut out).unwrap();
        let appended = range.map(|p| &out[p.start as usize..p.end as usize]);
        assert_eq!(hash, appended.map_or(0, path_hash), "{m:?}");
        assert_eq!((appended, got.parts()), (*path, *rank), "{m:?}");
        assert_eq!(out, format!("left over{}", path.unwrap_or("")));
    }
}

#[test]
fn plain_literal_takes_ordinary_paths_and_defers_the_rest() {
    for value in ["/", "/api", "/api/", "/a.b/c-d_e~f", "/.well-known/x", "/a/..b", "/r1/v2/items"] {
        assert!(plain_literal(value), "{value:?}");
    }
    for value in ["", "api", "//", "/a//b", "/./a", "/a/.", "/a/..", "/a/../b", "/%41", "/a#b", "/a b", "/é"]
    {
        assert!(!plain_literal(value), "{value:?}");
    }
}

#[test]
fn a_regex_is_checked_as_written_inside_its_anchors() {
    // `^(?:…)$` nests the value two levels deeper: a value just within the nesting limit alone
    // would pass the route and then fail the whole config, which then never changes again.
    for depth in [240, 248, 249, 250] {
        let value = format!("/{}a{}", "(".repeat(depth), ")".repeat(depth));
        let Ok(Some(path)) = http_path(&regex(&value)) else { continue };
        assert!(crate::re2::check(&path).is_ok(), "depth {depth}: the route passed, its path fails");
    }
    let deepest_accepted = (200..260)
        .filter(|d| http_path(&regex(&format!("/{}a{}", "(".repeat(*d), ")".repeat(*d)))).is_ok())
        .max();
    assert!(deepest_accepted.is_some_and(|d| d >= 240), "{deepest_accepted:?}");
}

#[test]
fn flag_groups_go_reads_and_regex_syntax_does_not_pass_as_written() {
    // `(?)`, `(?ii)`, `(?i-i)`: Go's regexp.Compile takes them (re2_flags.rs).
    let http = http_path(&regex("(?)/a(?ii)b(?i-i:c)"));
    assert_eq!(http, Ok(Some("^(?:(?)/a(?ii)b(?i-i:c))$".to_string())));
    let m = method(MethodKind::RegularExpression, Some("(?)pkg\\.Svc"), Some("(?i-i)Get"));
    assert_eq!(grpc_path(Some(&m)), Ok(Some("^/(?:(?)pkg\\.Svc)/(?:(?i-i)Get)$".to_string())));
}

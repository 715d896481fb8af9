//! Gateway API path and gRPC method matches → cloudflared `path:` regular expressions.
//!
//! cloudflared tests `path` with an UNANCHORED RE2 search against the PERCENT-DECODED URL path
//! (DOMAIN.md §1): `path: /api` also matches `/v2/api` and `/apix`. So every expression here is
//! anchored, literal values are percent-decoded and then escaped, and a prefix is matched
//! element-wise. `None` means "no path constraint".

use std::cmp::Reverse;
use std::ops::Range;

use crate::model::{GrpcMethodMatch, MethodKind, PathKind, PathMatch, Text};
use crate::re2;

#[path = "path_hash.rs"]
mod hash;
pub(crate) use hash::path_hash;
use hash::{hash_of, PathForm, META_CHARACTERS, PREFIX_TAIL};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} must start with '/'")]
    NotAbsolute(String),
    #[error("path {value:?} is refused by the HTTPRoute schema: {why}")]
    Schema { value: String, why: &'static str },
    #[error("path {0:?} decodes to bytes that are not UTF-8")]
    NotUtf8(String),
    #[error("regular expression {value:?} is not valid RE2 (cloudflared compiles paths with Go's regexp): {error}")]
    Regex { value: String, error: re2::Re2Error },
    #[error("gRPC method match needs a service, a method or both")]
    EmptyMethod,
    #[error("gRPC {field} {value:?} is not a valid name (the GRPCRoute schema allows {pattern})")]
    GrpcName { field: &'static str, value: String, pattern: &'static str },
    #[error("gRPC {field} is {len} characters long; the GRPCRoute schema allows at most 1024")]
    GrpcTooLong { field: &'static str, len: usize },
    #[error(
        "gRPC {field} expression {value:?} holds an anchor that can never hold inside the path \
         /service/method (^ or \\A anywhere, $ or \\z in the service); the expression is matched against \
         the whole {field} already: drop the anchors"
    )]
    GrpcAnchor { field: &'static str, value: String },
}

/// The regex for an HTTPRoute path match.
///
/// - Exact `v` → `^v$`
/// - PathPrefix `p` → `^p(?s:/.*)?$` with a trailing `/` of `p` ignored ("`/abc` matches
///   `/abc`, `/abc/`, `/abc/x`, not `/abcd`"); the `s` flag lets `.` match a decoded newline.
///   PathPrefix `/` → no constraint.
/// - RegularExpression `r` → `^(?:r)$`, after checking that Go's RE2 accepts it.
pub fn http_path(m: &PathMatch) -> Result<Option<String>, PathError> {
    let mut out = String::new();
    Ok(http_path_into(m, &mut out)?.then_some(out))
}

/// [`http_path`] written into `out` (cleared first), so a caller translating many paths can
/// reuse one buffer; `false` (and `out` empty) for "no path constraint".
pub fn http_path_into(m: &PathMatch, out: &mut String) -> Result<bool, PathError> {
    out.clear();
    push_http_path(m, out)
}

/// [`http_path_into`] appended to `out`; `out` is as it was for "no path constraint" and on an
/// error.
fn push_http_path(m: &PathMatch, out: &mut String) -> Result<bool, PathError> {
    let value = m.value.as_str();
    match m.kind {
        PathKind::Exact => {
            let decoded = literal(value)?;
            anchored(out, &decoded, "$");
        }
        PathKind::PathPrefix => {
            let decoded = literal(value)?;
            let trimmed = decoded.trim_end_matches('/');
            if trimmed.is_empty() {
                return Ok(false);
            }
            anchored(out, trimmed, "(?s:/.*)?$");
        }
        PathKind::RegularExpression => push_regex_path(value, out)?,
    }
    Ok(true)
}

/// `^(?:value)$` appended to `out`, after checking that Go's RE2 accepts `value` and the
/// wrapped expression; `out` is as it was on an error.
#[inline(always)]
fn push_regex_path(value: &str, out: &mut String) -> Result<(), PathError> {
    if value.len() > 1024 {
        return Err(PathError::Schema { value: value.into(), why: "longer than 1024 characters" });
    }
    // A value that parses on its own has balanced groups, so it cannot close the
    // wrapping group early (`a)|(b`) and escape the anchors. The one-pass recogniser
    // vouches for most; the others are parsed.
    let plain = re2::plainly_valid(value);
    if !plain {
        re2::check(value).map_err(|error| PathError::Regex { value: value.into(), error })?;
    }
    let start = out.len();
    out.push_str("^(?:");
    out.push_str(value);
    out.push_str(")$");
    // And as written: the wrapper nests the value two levels deeper, which may pass the
    // nesting limit the value alone kept to, and the whole config would be refused. (A
    // value the recogniser vouches for nests far less deep: nothing to redo.)
    if !plain {
        if let Err(error) = re2::check(&out[start..]) {
            out.truncate(start);
            return Err(PathError::Regex { value: value.into(), error });
        }
    }
    Ok(())
}

/// [`http_path`] and [`PathRank::http`] of `m` at once, the path appended to `paths` (the string
/// of every path of a translation) where the range says, with its [`path_hash`]; none (and a
/// hash of 0) for "no path constraint", and `paths` is then as it was, as on an error. A literal
/// path without anything to decode or refuse (almost every one) is checked, measured and
/// escaped in one pass, straight into `paths`; the rest go the long way, which decides the same
/// (`path_tests::appended_paths_agree_with_the_long_way`).
///
/// The hash is taken from the value where it can be (a literal taken in one pass, escaped or
/// not; a regular expression: what [`path_hash`] hashes of the path), not from the bytes just
/// written: those, written in small pieces and read back at once in words, cannot be taken
/// from the stores still pending, and the read waits for them to reach the cache.
pub(crate) fn http_path_append(
    m: &PathMatch,
    paths: &mut String,
) -> Result<(Option<Range<u32>>, PathRank, u64), PathError> {
    let start = paths.len();
    let (rank, hash) = if m.kind == PathKind::RegularExpression {
        // Always a path: ranked as [`PathRank::http`] ranks one (class 1, the value's length
        // less its trailing `/`s), hashed as [`path_hash`] hashes `^(?:value)$`, the value
        // read once.
        let value = m.value.as_str();
        push_regex_path(value, paths)?;
        // The `/`s at the end counted as bytes: no character to decode from the end.
        let trimmed = value.len() - value.bytes().rev().take_while(|&c| c == b'/').count();
        (PathRank::new(1, trimmed, 0), hash_of(PathForm::Regex, value.as_bytes()))
    } else {
        match plain_literal_path(m, paths) {
            Some(ranked) => ranked,
            None => {
                let some = push_http_path(m, paths)?;
                let path = some.then(|| &paths[start..]);
                (PathRank::http(m, path), path.map_or(0, path_hash))
            }
        }
    };
    if paths.len() == start {
        return Ok((None, rank, 0));
    }
    // The start is below the end: it fits too.
    let end = u32::try_from(paths.len()).expect("a paths string under 4 GiB");
    Ok((Some(start as u32..end), rank, hash))
}

/// Classes of the bytes of a [`plain_literal_path`], as bits. A byte that is not a
/// [`PLAIN_PATH_BYTE`]:
const LITERAL_OTHER: u8 = 1;
/// A plain byte RE2 reads as an operator: written with a backslash before it.
const LITERAL_META: u8 = 2;
const LITERAL_SLASH: u8 = 4;
/// `.`, also a [`LITERAL_META`]: a value holding one is looked at for `.` and `..` segments.
const LITERAL_DOT: u8 = 8;
/// Not a byte's class: a `/` right after a `/`, found from the classes of the two.
const LITERAL_DOUBLE_SLASH: u8 = LITERAL_SLASH << 2;

/// The class bits of each byte; the meta characters are regex-syntax's
/// (`path_tests::literal_byte_classes_match_regex_syntax` holds them to it).
const LITERAL_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        if !PLAIN_PATH_BYTE[b] {
            table[b] = LITERAL_OTHER;
        }
        b += 1;
    }
    let mut i = 0;
    while i < META_CHARACTERS.len() {
        let meta = META_CHARACTERS[i] as usize;
        if PLAIN_PATH_BYTE[meta] {
            table[meta] = LITERAL_META;
        }
        i += 1;
    }
    table[b'/' as usize] = LITERAL_SLASH;
    table[b'.' as usize] = LITERAL_META | LITERAL_DOT;
    table
};

/// The path of an Exact or PathPrefix value that [`plain_literal`] takes, appended to `out`,
/// its rank and its [`path_hash`] (0 without a path), in one pass over the value (the bytes'
/// classes OR-ed together, branch-free) and one copy; `None` for any other value, nothing
/// written.
fn plain_literal_path(m: &PathMatch, out: &mut String) -> Option<(PathRank, u64)> {
    let value = m.value.as_str();
    let b = value.as_bytes();
    if m.kind == PathKind::RegularExpression || b.first() != Some(&b'/') || b.len() > 1024 {
        return None;
    }
    let seen = if simple_literal(b) { LITERAL_SLASH } else { literal_classes(b) };
    // Refused or to decode: a byte of another kind, an empty segment (`//`), a `.` or `..` one.
    if seen & (LITERAL_OTHER | LITERAL_DOUBLE_SLASH) != 0
        || (seen & LITERAL_DOT != 0 && b.split(|&c| c == b'/').any(|s| s == b"." || s == b".."))
    {
        return None;
    }
    // Nothing to decode: the length that ranks is the value's, less a trailing `/` (one at
    // most: no `//`).
    let trimmed = value.strip_suffix('/').unwrap_or(value);
    let exact = m.kind == PathKind::Exact;
    let (class, literal, form) = match exact {
        true => (0, value, PathForm::Exact),
        false if trimmed.is_empty() => return Some((PathRank::new(3, 0, 0), 0)),
        false => (2, trimmed, PathForm::Prefix),
    };
    out.push('^');
    // `^` + the value, escaped, + the tail: no `(` in the value without a backslash before it,
    // so no other form takes the path, and the literal between head and tail is the value.
    if seen & LITERAL_META == 0 {
        out.push_str(literal);
    } else {
        push_escaped_literal(out, literal);
    }
    // Each tail pushed as a constant: its bytes are then stored in place, where a tail chosen
    // at run time took a call to `memcpy` (about 18 instructions a path).
    if exact {
        out.push('$');
    } else {
        out.push_str(PREFIX_TAIL);
    }
    let hash = hash_of(form, literal.as_bytes());
    Some((PathRank::new(class, trimmed.len(), 0), hash))
}

/// The classes of `b`'s bytes OR-ed together, with [`LITERAL_DOUBLE_SLASH`] for a `/` right
/// after a `/`: one pass, branch-free.
fn literal_classes(b: &[u8]) -> u8 {
    let (mut seen, mut before) = (0u8, 0u8);
    for &c in b {
        let class = LITERAL_BYTE[c as usize];
        seen |= class | (before & class & LITERAL_SLASH) << 2;
        before = class;
    }
    seen
}

/// Every byte of a word.
const BYTES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = BYTES * 0x80;

/// Whether `b` (4 bytes or more) holds only ASCII letters, digits and `/`, and no `/`
/// right after a `/`: the literal most paths are, with nothing to escape, decode or refuse,
/// whose [`literal_classes`] are [`LITERAL_SLASH`] alone. Decided 8 bytes at a time, where the
/// byte loop takes about 7 instructions a byte; `false` says nothing, and [`literal_classes`]
/// decides (`path_tests::simple_literals_are_what_the_byte_loop_finds`). Words overlap by a
/// byte or more, so each pair of adjacent bytes is inside one word.
#[inline(always)]
fn simple_literal(b: &[u8]) -> bool {
    let n = b.len();
    if n < 4 {
        return false;
    }
    if n < 8 {
        // Two halves overlapping (or meeting) at the middle; bytes 3 and 4 of the word are
        // not next to each other in `b`, so that pair is not looked at.
        let word4 = |i: usize| u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default()));
        return simple_word(word4(0) | word4(n - 4) << 32, !(0x80 << 32));
    }
    let word8 = |i: usize| {
        let w: [u8; 8] = b[i..i + 8].try_into().unwrap_or_default();
        u64::from_le_bytes(w)
    };
    let mut i = 0;
    while i + 8 < n {
        if !simple_word(word8(i), u64::MAX) {
            return false;
        }
        i += 7;
    }
    simple_word(word8(n - 8), u64::MAX)
}

/// [`simple_literal`] of the 8 bytes of `x` (little-endian), looking for `//` only at the
/// pairs whose second byte's high bit `pairs` holds.
#[inline(always)]
fn simple_word(x: u64, pairs: u64) -> bool {
    // On bytes below 0x80 (the word is refused otherwise), no sum below carries out of its
    // byte: a byte's high bit says whether it is at least `lo`, or above `hi`. (With a byte
    // from 0x80 the sum may carry out of the word: wrapping, as the word is refused anyway.)
    let at_least = |v: u64, lo: u8| v.wrapping_add(BYTES * u64::from(0x80 - lo));
    let above = |v: u64, hi: u8| v.wrapping_add(BYTES * u64::from(0x7f - hi));
    let digit_or_slash = at_least(x, b'/') & !above(x, b'9');
    let lower = x | (BYTES * 0x20);
    let letter = at_least(lower, b'a') & !above(lower, b'z');
    // Of those, the slashes are the bytes below `0`.
    let slash = !at_least(x, b'0') & HIGHS;
    x & HIGHS == 0 && (digit_or_slash | letter) & HIGHS == HIGHS && slash & slash << 8 & pairs == 0
}

/// `literal` (plain path bytes: [`PLAIN_PATH_BYTE`]) appended to `out` with a backslash before
/// each meta character. Not inlined: the loop kept out of the plain case's caller, where most
/// literals have nothing to escape.
#[inline(never)]
fn push_escaped_literal(out: &mut String, literal: &str) {
    let mut run = 0;
    for (i, &c) in literal.as_bytes().iter().enumerate() {
        if LITERAL_BYTE[c as usize] & LITERAL_META != 0 {
            out.push_str(&literal[run..i]);
            out.push('\\');
            run = i;
        }
    }
    out.push_str(&literal[run..]);
}

/// `^` + the escaped literal + `tail`.
fn anchored(out: &mut String, literal: &str, tail: &str) {
    out.reserve(literal.len() + tail.len() + 8);
    out.push('^');
    escape_into(out, literal);
    out.push_str(tail);
}

/// Bytes a literal path may hold without a closer look: the CRD's characters, less `%`
/// (an escape, decoded by the slow path).
const PLAIN_PATH_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let allowed = b"-/._~!$&'()*+,;=:@";
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        table[b] = table[b] || (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
};

/// One pass over a literal path that has nothing to decode and nothing the CRD refuses (no
/// `//`, no `.` or `..` segment), which is almost every path; `false` says nothing, and
/// [`literal_checked`] decides.
fn plain_literal(value: &str) -> bool {
    let b = value.as_bytes();
    if b.first() != Some(&b'/') || b.len() > 1024 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        if !PLAIN_PATH_BYTE[c as usize] {
            return false;
        }
        if c == b'/' {
            // The segment after this `/`: empty (`//`), `.` or `..` are refused.
            let rest = &b[i + 1..];
            let segment = &rest[..rest.iter().position(|&x| x == b'/').unwrap_or(rest.len())];
            if (segment.is_empty() && !rest.is_empty()) || segment == b"." || segment == b".." {
                return false;
            }
        }
    }
    true
}

/// Validate a literal path as the HTTPRoute CRD does and percent-decode it (cloudflared
/// matches the decoded path).
fn literal(value: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    if plain_literal(value) {
        return Ok(std::borrow::Cow::Borrowed(value));
    }
    literal_checked(value)
}

/// [`literal`], every rule in turn, naming the first one `value` breaks.
fn literal_checked(value: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    let schema = |why| Err(PathError::Schema { value: value.to_string(), why });
    if !value.starts_with('/') {
        return Err(PathError::NotAbsolute(value.to_string()));
    }
    // The CEL rules of the HTTPRoute CRD (v1.5) for Exact and PathPrefix values.
    if value.len() > 1024 {
        return schema("longer than 1024 characters");
    }
    if value.contains("//") {
        return schema("must not contain '//'");
    }
    if value.contains("/./") || value.contains("/../") || value.ends_with("/.") || value.ends_with("/..") {
        return schema("must not contain '/./' or '/../' nor end with '/.' or '/..'");
    }
    if value.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f')) {
        return schema("must not contain '%2f' or '%2F'");
    }
    if value.contains('#') {
        return schema("must not contain '#'");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@%".contains(&b);
    if !value.bytes().all(allowed) {
        return schema("must only contain the characters [-A-Za-z0-9/._~!$&'()*+,;=:@] and %-escapes");
    }
    let bytes = value.as_bytes();
    let hex_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
    let bad_escape = (0..bytes.len()).any(|i| bytes[i] == b'%' && !(hex_at(i + 1) && hex_at(i + 2)));
    if bad_escape {
        return schema("'%' must start a %-escape of two hex digits");
    }
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8(value.to_string()))
}

/// Escape a literal for RE2: meta characters get a backslash, anything that is not a printable
/// character is written as `\x{..}` so the regex (and the YAML holding it) stays readable.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    if text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        // Printable ASCII, the usual case: runs without meta characters copied whole.
        let mut rest = text;
        while let Some(i) = rest.bytes().position(|b| regex_syntax::is_meta_character(char::from(b))) {
            out.push_str(&rest[..i]);
            out.push('\\');
            out.push_str(&rest[i..i + 1]);
            rest = &rest[i + 1..];
        }
        out.push_str(rest);
        return;
    }
    for c in text.chars() {
        if regex_syntax::is_meta_character(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_control()
            || (c.is_whitespace() && c != ' ')
            || c == '\u{feff}'
            || !crate::yaml::go_yaml_reads(c)
        {
            out.push_str(&format!("\\x{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
}

const SERVICE_PATTERN: &str = r"^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$";
const METHOD_PATTERN: &str = r"^[A-Za-z_][A-Za-z_0-9]*$";

/// The regex for a GRPCRoute method match on the HTTP/2 path `/Service/Method`.
///
/// Exact S+M → `^/S/M$`; S only → `^/S/[^/]+$`; M only → `^/[^/]+/M$`; RegularExpression
/// wraps each given part in `(?:…)`; no method match → no constraint.
pub fn grpc_path(m: Option<&GrpcMethodMatch>) -> Result<Option<String>, PathError> {
    let Some(m) = m else { return Ok(None) };
    if m.service.is_none() && m.method.is_none() {
        return Err(PathError::EmptyMethod);
    }
    let part = |value: Option<&Text>, field: &'static str| -> Result<String, PathError> {
        let Some(value) = value else { return Ok("[^/]+".to_string()) };
        if value.len() > 1024 {
            return Err(PathError::GrpcTooLong { field, len: value.len() });
        }
        match m.kind {
            MethodKind::Exact => {
                let ok = if field == "service" { valid_service(value) } else { valid_method(value) };
                if !ok {
                    let pattern = if field == "service" { SERVICE_PATTERN } else { METHOD_PATTERN };
                    return Err(PathError::GrpcName { field, value: value.to_string(), pattern });
                }
                Ok(escape(value))
            }
            MethodKind::RegularExpression => {
                re2::check(value).map_err(|error| PathError::Regex { value: value.to_string(), error })?;
                // The path goes on after the service (`/`), and there is always one before.
                if has_anchor(value, field == "service") {
                    return Err(PathError::GrpcAnchor { field, value: value.to_string() });
                }
                Ok(format!("(?:{value})"))
            }
        }
    };
    let regex = format!("^/{}/{}$", part(m.service.as_ref(), "service")?, part(m.method.as_ref(), "method")?);
    re2::check(&regex).map_err(|error| PathError::Regex { value: regex.clone(), error })?;
    Ok(Some(regex))
}

/// Whether `pattern` (one that passed [`re2::check`]) asserts the start of the text or of a
/// line anywhere, or (`ends`) its end. Inside `^/(?:S)/(?:M)$` a start can never hold, nor an
/// end in the service (a line would need a newline in a gRPC name, which the schema refuses),
/// so the rule would match nothing, without a word.
fn has_anchor(pattern: &str, ends: bool) -> bool {
    use regex_syntax::ast::{AssertionKind, Ast};
    fn walk(ast: &Ast, ends: bool) -> bool {
        match ast {
            Ast::Assertion(a) => match a.kind {
                AssertionKind::StartLine | AssertionKind::StartText => true,
                AssertionKind::EndLine | AssertionKind::EndText => ends,
                _ => false,
            },
            Ast::Repetition(r) => walk(&r.ast, ends),
            Ast::Group(g) => walk(&g.ast, ends),
            Ast::Alternation(a) => a.asts.iter().any(|a| walk(a, ends)),
            Ast::Concat(c) => c.asts.iter().any(|a| walk(a, ends)),
            _ => false,
        }
    }
    // Read as re2::check read it: Go's flag groups that regex-syntax refuses (`(?)`) rewritten.
    re2::go_ast(pattern).is_some_and(|ast| walk(&ast, ends))
}

/// `SERVICE_PATTERN`: dot-separated identifiers, optionally led by a dot; case-insensitive.
fn valid_service(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    s.split('.').all(valid_identifier)
}

/// `METHOD_PATTERN`: one identifier.
fn valid_method(s: &str) -> bool {
    valid_identifier(s)
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Order of paths for first match, most specific first. Gateway API: "Exact path match",
/// then "Longest PathPrefix"; for GRPCRoute "characters in a matching service, then in a
/// matching method". RegularExpression placement is implementation-specific: ours is after
/// every exact match and before every prefix (longer pattern first), documented in
/// docs/translation.md. No path constraint comes last. Equal ranks fall to the spec's
/// tie-breaks across routes (oldest, then `namespace/name`) and within a route (rule order),
/// which [`crate::translate::translate`] applies after the rank.
///
/// Six bytes: the lengths are kept as `u16`, saturating (every value the schema lets through is
/// at most 1,024 characters long), so the [`crate::translate`] candidates that carry a rank
/// stay small to sort and to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathRank {
    class: u8,
    primary: Reverse<u16>,
    secondary: Reverse<u16>,
}

impl PathRank {
    fn new(class: u8, primary: usize, secondary: usize) -> PathRank {
        let saturated = |len: usize| Reverse(u16::try_from(len).unwrap_or(u16::MAX));
        PathRank { class, primary: saturated(primary), secondary: saturated(secondary) }
    }

    /// `(class, primary, secondary)`: ranks order by class, then by LONGER primary, then by
    /// longer secondary (the characters of a path or prefix; of a gRPC service and method).
    pub fn parts(&self) -> (u8, usize, usize) {
        (self.class, usize::from(self.primary.0), usize::from(self.secondary.0))
    }

    pub fn http(m: &PathMatch, regex: Option<&str>) -> PathRank {
        let value = m.value.trim_end_matches('/');
        // A literal is matched decoded, so its length is the decoded one: `/%61%70%69` is
        // `/api`, shorter than `/api/v1`.
        let len = if m.kind != PathKind::RegularExpression && value.contains('%') {
            percent_encoding::percent_decode_str(value).count()
        } else {
            value.len()
        };
        let class = match (m.kind, regex) {
            (_, None) => 3,
            (PathKind::Exact, _) => 0,
            (PathKind::RegularExpression, _) => 1,
            (PathKind::PathPrefix, _) => 2,
        };
        PathRank::new(class, len, 0)
    }

    /// Gateway API ranks GRPCRoute matches by "characters in a matching service", then "in a
    /// matching method", whatever their type: an Exact method-only match must not come before
    /// a RegularExpression one that names the service too.
    pub fn grpc(m: Option<&GrpcMethodMatch>, regex: Option<&str>) -> PathRank {
        let len = |s: Option<&Text>| s.map_or(0, |s| s.len());
        let class = match (m, regex) {
            (None, _) | (_, None) => 3,
            (Some(_), Some(_)) => 0,
        };
        PathRank::new(class, len(m.and_then(|m| m.service.as_ref())), len(m.and_then(|m| m.method.as_ref())))
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;

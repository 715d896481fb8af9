//! How YAML is read everywhere (manifests, the base config, rendered configs).
//!
//! serde-saphyr guards against hostile input with budgets whose defaults (250,000 nodes,
//! 1,024 documents) are below what real inputs reach: a rendered config of 10,000 routes has
//! some 300,000 nodes, and `kubectl get httproutes -A -o yaml` of a large cluster holds more
//! than that. cloudflared's own YAML reader has no such limits. The budget here still bounds
//! work and memory (about ten times the largest configuration we have measured), keeps the
//! nesting limit, and leaves alias limits at their defaults (the "billion laughs" guard).

/// Whether Go's yaml.v3 (cloudflared's reader) takes `c` anywhere in a file: tab, line feed,
/// carriage return, printable ASCII, U+0085, and U+00A0 on but for surrogates, U+FFFE and
/// U+FFFF. Any other character fails the whole file ("control characters are not allowed").
pub fn go_yaml_reads(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The text of the first YAML document of `text`: what Go's `yaml.NewDecoder(f).Decode`
/// reads, and so all of a config file cloudflared looks at. A document ends at a `...` line,
/// or at a `---` line after the document's content (or after its own `---`). These markers
/// are at the start of a line and followed by white space or the end of the line, and YAML
/// forbids such lines inside any scalar, so finding them needs no parsing.
pub fn first_document(text: &str) -> &str {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let (mut started, mut content) = (false, false);
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if marker(bare, "...") || (marker(bare, "---") && (started || content)) {
            return &text[..offset];
        }
        if marker(bare, "---") {
            started = true;
        } else {
            let trimmed = bare.trim_start();
            if !(trimmed.is_empty() || trimmed.starts_with('#') || (!started && bare.starts_with('%'))) {
                content = true;
            }
        }
        offset += line.len();
    }
    text
}

/// How a plain scalar reads: the classes Go's yaml.v3 resolves one into (a timestamp counts as
/// a string: no cloudflared setting is one).
#[derive(Clone, Debug, PartialEq)]
enum Plain {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

impl Plain {
    fn same(&self, other: &Plain) -> bool {
        match (self, other) {
            (Plain::Float(a), Plain::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => self == other,
        }
    }

    fn describe(&self, text: &str) -> String {
        match self {
            Plain::Null => "null".into(),
            Plain::Bool(b) => b.to_string(),
            Plain::Int(i) => format!("the integer {i}"),
            Plain::Float(x) => format!("the number {x}"),
            Plain::Str => format!("the string {text:?}"),
        }
    }
}

/// What Go's yaml.v3 (cloudflared's reader) resolves an untagged plain scalar to
/// (`resolve.go`): six spellings of the booleans, five of null, integers in Go's syntax
/// (`0x`, `0o`, `0b`, and `0` for octal; underscores dropped), YAML-style floats.
fn go_plain(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    let float = |t: &str| {
        // yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
        let body = t.strip_prefix(['-', '+']).unwrap_or(t);
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        let mantissa_ok = match mantissa.split_once('.') {
            Some(("", fraction)) => digits(fraction),
            Some((int, fraction)) => digits(int) && (fraction.is_empty() || digits(fraction)),
            None => digits(mantissa),
        };
        let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
        // Go's ParseFloat fails out of range (1e400): the scalar stays a string.
        (mantissa_ok && exponent_ok).then(|| t.parse::<f64>().ok().filter(|x| x.is_finite())).flatten()
    };
    match text.as_bytes()[0] {
        b'.' => float(text).map_or(Plain::Str, Plain::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = text.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Plain::Int(i);
            }
            float(&plain).map_or(Plain::Str, Plain::Float)
        }
        _ => Plain::Str,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: a sign (for ParseInt), a base
/// prefix (`0x`, `0o`, `0b`, or a leading `0` for octal), digits, in range.
fn go_parse_int(s: &str) -> Option<i128> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    let signed = s.starts_with(['-', '+']);
    let value = if negative { -(magnitude as i128) } else { magnitude as i128 };
    let fits = (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&value)
        || (!signed && magnitude <= u128::from(u64::MAX));
    (magnitude <= u128::from(u64::MAX) && fits).then_some(value)
}

/// yaml.v3's YAML 1.1 spellings of a boolean (`yes`, `Off`, …), which it decodes into a
/// boolean setting as that boolean, though it resolves them to strings.
pub fn go_bool_word(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// How serde-saphyr (our reader) resolves the plain scalar `text`, and the value it reads.
fn saphyr_plain(text: &str) -> (Plain, serde_json::Value) {
    use serde_json::Value;
    // Alone, a scalar that reads as a string in place may not parse as one (`-` is a list).
    let value: Value =
        serde_saphyr::from_str_with_options(text, options()).unwrap_or_else(|_| Value::String(text.into()));
    let plain = match &value {
        Value::Null => Plain::Null,
        Value::Bool(b) => Plain::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Plain::Int(i.into()),
            (_, Some(u), _) => Plain::Int(u.into()),
            (_, _, Some(x)) => Plain::Float(x),
            _ => Plain::Str,
        },
        // `.Inf` arrives as the string ".inf" (JSON has no infinity): a float read.
        Value::String(s) if s != text => Plain::Float(f64::NAN),
        Value::String(_) | Value::Array(_) | Value::Object(_) => Plain::Str,
    };
    (plain, value)
}

/// How a value read is written back into a rendered config.
fn written_back(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).map(|w| w.trim_end().to_string()).unwrap_or_default()
}

/// A plain scalar that our YAML reader takes otherwise than cloudflared's.
#[derive(Clone, Debug, PartialEq)]
pub struct Misread {
    /// 1-based.
    pub line: usize,
    pub column: usize,
    pub text: String,
    /// How cloudflared reads it: `the string "nULL"`, `the integer 8`.
    pub go: String,
    /// How we would write it back.
    pub ours: String,
    /// We read the same value, and would only write it in another spelling.
    pub respelled: bool,
}

impl std::fmt::Display for Misread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Misread { line, column, text, go, ours, .. } = self;
        if self.respelled {
            write!(
                f,
                "line {line} column {column}: `{text}` would be copied as `{ours}`, the same number, but a \
                 string setting (a file name, a host name) would read {ours:?}; quote it if a string is \
                 meant, or write `{ours}`"
            )
        } else {
            write!(
                f,
                "line {line} column {column}: cloudflared's YAML reader takes `{text}` as {go}, ours as `{ours}`; \
                 quote it if a string is meant, or write the value as cloudflared reads it"
            )
        }
    }
}

/// The untagged plain scalars of `text`'s first document that serde-saphyr reads otherwise than
/// Go's yaml.v3: `nULL` (a string to Go, null to us), `tRUE`, `010` (8 to Go, 10 to us), `.inf`.
/// With `rewritten`, also the numbers we would write back in another spelling (`0x10` as `16`,
/// `1e3` as `1000.0`): a string setting (`caPool: 0x10`) would name another value.
///
/// Not reported: `yes`, `on`, `n` and the rest of yaml.v3's compatibility spellings, which Go
/// reads as strings but decodes into a boolean setting as one: we read them as that boolean.
/// The text is assumed to parse (the caller parsed it); a scan error ends the list.
pub fn misread_plain_scalars(text: &str, rewritten: bool) -> Vec<Misread> {
    use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
    let mut found = Vec::new();
    // The open collections, each with how many nodes it holds so far: a mapping's odd ones are
    // values. A value of the top-level mapping is a cloudflared flag when it is no setting of
    // the config, and a flag takes no compatibility spelling (`no-autoupdate: yes` is a string
    // to it, and refused).
    let mut open: Vec<(bool, usize)> = Vec::new();
    for event in Parser::new_from_str(first_document(text)) {
        let Ok((event, span)) = event else { break };
        let top_level_value = matches!(open.as_slice(), [(true, n)] if n % 2 == 1);
        match &event {
            Event::Scalar(..) | Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some((_, n)) = open.last_mut() {
                    *n += 1;
                }
            }
            _ => {}
        }
        match &event {
            Event::MappingStart(..) => open.push((true, 0)),
            Event::SequenceStart(..) => open.push((false, 0)),
            Event::MappingEnd | Event::SequenceEnd => {
                open.pop();
            }
            _ => {}
        }
        let Event::Scalar(value, ScalarStyle::Plain, _, None) = event else { continue };
        // Go resolves only these words, and scalars with these leads, to anything but a string,
        // and serde-saphyr only these (any case) to a boolean, null or number.
        let word = matches!(
            value.to_ascii_lowercase().as_str(),
            "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
        if !word && !value.starts_with(|c: char| "+-.0123456789".contains(c)) {
            continue;
        }
        let go = go_plain(&value);
        let (ours, value_read) = saphyr_plain(&value);
        let compatible = !top_level_value && go_bool_word(&value).is_some_and(|b| ours == Plain::Bool(b));
        let numeric = matches!(go, Plain::Int(_) | Plain::Float(_));
        let differs = !go.same(&ours) && !compatible;
        // What it would be written back as: only asked when it may matter.
        if !(differs || (rewritten && numeric)) {
            continue;
        }
        let written = written_back(&value_read);
        if differs || written != *value {
            found.push(Misread {
                respelled: !differs,
                line: span.start.line(),
                column: span.start.col() + 1,
                go: go.describe(&value),
                text: value.into_owned(),
                ours: written,
            });
        }
    }
    found
}

/// A YAML error as a user reads it: where it is, and what is wrong.
///
/// The text is serde-saphyr's user-facing wording (`UserMessageFormatter`), without the hints
/// its default wording addresses to programmers ("use from_multiple or
/// from_multiple_with_options", "set DuplicateKeyPolicy in Options if acceptable",
/// "recursive references require weak recursion types"), and never the snippet of the text
/// around the error that its `Display` adds: the file may hold a secret (the tunnel's
/// credentials file given in place of a config, say), and messages reach terminals and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMessage {
    /// Line and column, from 1.
    pub location: Option<(u64, u64)>,
    pub message: String,
}

impl ErrorMessage {
    pub fn new(error: &serde_saphyr::Error) -> ErrorMessage {
        use serde_saphyr::MessageFormatter;
        let error = error.without_snippet();
        ErrorMessage {
            location: error.location().map(|l| (l.line(), l.column())),
            message: serde_saphyr::UserMessageFormatter.format_message(error).into_owned(),
        }
    }

    /// `FILE:LINE:COLUMN: message`, as compilers and the manifest loader write it.
    pub fn in_file(&self, file: &str) -> String {
        match self.location {
            Some((line, column)) => format!("{file}:{line}:{column}: {}", self.message),
            None => format!("{file}: {}", self.message),
        }
    }
}

/// What an [`ErrorMessage`] must never hold (tests): the text around the error (a credentials
/// file given by mistake would show its secret), serde-saphyr's hints to programmers, and its
/// own `error: ` prefix.
#[cfg(test)]
pub(crate) const NEVER_IN_AN_ERROR: &[&str] =
    &["SECRET", "-->", " | ", "from_multiple", "DuplicateKeyPolicy", "weak recursion", "error: "];

/// `line L, column C: message`.
impl std::fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((line, column)) = self.location {
            write!(f, "line {line}, column {column}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Options for `serde_saphyr::from_str_with_options` and friends.
pub fn options() -> serde_saphyr::Options {
    options_with_scalar_bytes(512 * 1024 * 1024)
}

/// [`options`] for manifests: Kubernetes objects, whose scalars the API server holds to a few
/// megabytes per object, so a file's scalars (aliases replayed included) are held to 64 MiB
/// instead of 512 (a 1 MiB scalar replayed 500 times held half a gigabyte).
pub fn manifest_options() -> serde_saphyr::Options {
    options_with_scalar_bytes(64 * 1024 * 1024)
}

fn options_with_scalar_bytes(max_total_scalar_bytes: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 10_000_000,
            max_documents: 1_000_000,
            max_total_scalar_bytes: max_total_scalar_bytes,
        },
        // A thousand times what anchors in a real config or manifest replay (the default, a
        // million per document, let a 4 KB file of eleven documents take 725 MB).
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 100_000 },
    }
}

#[cfg(test)]
mod tests {
    use super::{go_plain, misread_plain_scalars, Plain};

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v3_resolves_them() {
        for (text, want) in [
            ("", Plain::Null),
            ("~", Plain::Null),
            ("NULL", Plain::Null),
            ("nULL", Plain::Str),
            ("True", Plain::Bool(true)),
            ("tRUE", Plain::Str),
            ("yes", Plain::Str),
            ("010", Plain::Int(8)),
            ("0x10", Plain::Int(16)),
            ("0o10", Plain::Int(8)),
            ("-0b11", Plain::Int(-3)),
            ("1_000", Plain::Int(1000)),
            ("+5", Plain::Int(5)),
            ("18446744073709551615", Plain::Int(18446744073709551615)),
            ("-9223372036854775809", Plain::Float(-9223372036854775809.0)),
            ("1e3", Plain::Float(1000.0)),
            (".5", Plain::Float(0.5)),
            ("1.", Plain::Float(1.0)),
            ("1e400", Plain::Str),
            ("09", Plain::Float(9.0)),
            ("0x", Plain::Str),
            ("2001-12-14", Plain::Str),
            ("12:30", Plain::Str),
            ("-", Plain::Str),
            ("+.inf", Plain::Float(f64::INFINITY)),
            ("http_status:404", Plain::Str),
        ] {
            assert!(go_plain(text).same(&want), "{text:?}: {:?}, not {want:?}", go_plain(text));
        }
    }

    #[test]
    fn scalars_read_otherwise_than_cloudflared_reads_them_are_found() {
        let text =
            "x:\n a: nULL\n b: tRUE\n c: [010, .inf]\n d: yes\n e: NULL\n f: 1e3\n g: 0x10\n h: '010'\n\
                    \x20i: 100\n j: 1.5\n k: plain\n l: ~\n m: TrUe\n n: -\n o: [-1, 0, 1.0]\n";
        let found = |rewritten| -> Vec<(usize, String)> {
            misread_plain_scalars(text, rewritten).into_iter().map(|m| (m.line, m.text)).collect()
        };
        let read: Vec<(usize, String)> = [(2, "nULL"), (3, "tRUE"), (4, "010"), (4, ".inf"), (14, "TrUe")]
            .map(|(l, t)| (l, t.into()))
            .into();
        assert_eq!(found(false), read);
        let mut written = read.clone();
        written.extend([(7, "1e3"), (8, "0x10")].map(|(l, t)| (l, t.to_string())));
        written.sort();
        let mut got = found(true);
        got.sort();
        assert_eq!(got, written);
        let first = &misread_plain_scalars(text, false)[0];
        assert_eq!(
            (first.column, first.go.as_str(), first.ours.as_str()),
            (5, "the string \"nULL\"", "null")
        );
        // A top-level value is a flag to cloudflared, which takes `yes` as the string it is.
        let flags = misread_plain_scalars("no-autoupdate: yes\noriginRequest: {noTLSVerify: yes}\n", false);
        assert_eq!(flags.iter().map(|m| (m.line, m.text.as_str())).collect::<Vec<_>>(), [(1, "yes")]);
    }

    #[test]
    fn first_document_is_what_a_go_decoder_reads() {
        for (text, first) in [
            ("a: 1\n", "a: 1\n"),
            ("a: 1\n---\nb: 2\n", "a: 1\n"),
            ("---\na: 1\n---\nb: 2\n", "---\na: 1\n"),
            ("# c\n---\na: 1\n--- \nb\n", "# c\n---\na: 1\n"),
            ("a: 1\n...\n", "a: 1\n"),
            ("%YAML 1.2\n---\na: 1\n", "%YAML 1.2\n---\na: 1\n"),
            // Not markers: indented, or followed by more than white space.
            ("a: |\n  ---\nb: ---x\n", "a: |\n  ---\nb: ---x\n"),
            ("a: 1\n----\n", "a: 1\n----\n"),
            ("--- a\n---\nb\n", "--- a\n"),
        ] {
            assert_eq!(super::first_document(text), first, "{text:?}");
        }
    }

    #[test]
    fn go_yaml_reads_what_yaml_v3_reads() {
        for c in
            ['\t', '\n', '\r', ' ', '~', '\u{85}', '\u{a0}', '\u{d7ff}', '\u{e000}', '\u{fffd}', '\u{10000}']
        {
            assert!(super::go_yaml_reads(c), "{c:?}");
        }
        for c in [
            '\0', '\u{b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{84}', '\u{86}', '\u{9f}', '\u{fffe}', '\u{ffff}',
        ] {
            assert!(!super::go_yaml_reads(c), "{c:?}");
        }
    }

    #[test]
    fn alias_replays_are_bounded() {
        // An anchor of 2,000 nodes replayed 90 times: 180,000 nodes from 6 KB (and a few such
        // documents in one file took hundreds of megabytes).
        let text = format!("a: &a [{}x]\nb: [{}*a]\n", "x, ".repeat(2000), "*a, ".repeat(89));
        let read = serde_saphyr::from_str_with_options::<serde_json::Value>(&text, super::options());
        assert!(read.is_err(), "{} bytes replayed", text.len());
        let fewer = format!("a: &a [{}x]\nb: [{}*a]\n", "x, ".repeat(2000), "*a, ".repeat(40));
        assert!(serde_saphyr::from_str_with_options::<serde_json::Value>(&fewer, super::options()).is_ok());
        // A big scalar replayed: manifests hold less than configs.
        let big = format!("a: &s {}\nb: [{}*s]\n", "x".repeat(1 << 20), "*s, ".repeat(69));
        assert!(serde_saphyr::from_str_with_options::<serde_json::Value>(&big, super::options()).is_ok());
        assert!(serde_saphyr::from_str_with_options::<serde_json::Value>(&big, super::manifest_options())
            .is_err());
    }

    #[test]
    fn large_configs_and_exports_fit_the_budget() {
        // 40,000 rules (10,000 routes of 4 rules): about 280,000 nodes, above the default 250,000.
        let mut text = String::from("ingress:\n");
        for i in 0..40_000 {
            text.push_str(&format!(
                "  - hostname: h{i}.example.com\n    path: ^/p{i}$\n    service: http://s:80\n"
            ));
        }
        text.push_str("  - service: http_status:404\n");
        let value: serde_json::Value = serde_saphyr::from_str_with_options(&text, super::options()).unwrap();
        assert_eq!(value["ingress"].as_array().unwrap().len(), 40_001);
        // More documents than the default 1,024.
        let docs = "a: 1\n---\n".repeat(5_000);
        let values: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&docs, super::options()).unwrap();
        assert!(values.len() >= 5_000);
    }
}

use super::*;

/// (case name, pattern) that Go's `regexp.Compile` accepts and so must we.
const ACCEPTED: &[(&str, &str)] = &[
    ("empty_pattern", ""),
    ("anchored_literal", "^/api$"),
    ("prefix_with_dot_all_group", "^/api(?s:/.*)?$"),
    ("non_capturing_group", "(?:a|b)c"),
    ("case_insensitive_flag", "(?i)abc"),
    ("flag_group_with_negation", "(?i-s:a.)"),
    ("multi_line_flag", "(?m)^a$"),
    ("swap_greed_flag", "(?U)a*"),
    ("dot_all_group", "(?s:.)"),
    ("class_with_ranges", "[a-z0-9_-]"),
    ("negated_class", "^/[^/]+$"),
    ("close_bracket_first_in_class", "[]a]"),
    ("ascii_class", "[[:alpha:]]"),
    ("negated_ascii_class", "[[:^digit:]]"),
    ("perl_classes", r"\d+\s\w\D\S\W"),
    ("perl_class_in_class", r"[\d\s.]"),
    ("meta_escapes", r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\"),
    ("punctuation_escapes", r"\/\-\_\%\#\&\~"),
    ("regex_syntax_escape_output", "/a\\.b\\-c\\#d\\&e\\~f"),
    ("hex_escapes", r"\x41\x{10FFFF}"),
    ("octal_escapes", r"\0\12\123"),
    ("special_escapes", r"\a\f\t\n\r\v"),
    ("text_anchors", r"\A/x\z"),
    ("word_boundaries", r"\bfoo\B"),
    ("named_group_p_syntax", "(?P<n>x)"),
    ("named_group_with_digits_and_underscore", "(?P<id_2>x)(?P<other>y)"),
    ("unicode_one_letter_category", r"\pL\PN"),
    ("unicode_two_letter_category", r"\p{Lu}\p{Nd}"),
    ("unicode_category_in_braces", r"\p{L}"),
    ("unicode_script", r"\p{Greek}\p{Old_Italic}"),
    ("unicode_negated_in_braces", r"\p{^Greek}\P{^L}"),
    ("unicode_any", r"\p{Any}"),
    ("unicode_in_class", r"[\p{Latin}\d]"),
    ("repeat_count_1000", "a{1000}"),
    ("repeat_range_to_1000", "a{2,1000}"),
    ("repeat_at_least", "a{0,}b{3,}"),
    ("nested_repeats_product_1000", "((a{10}){10}){10}"),
    ("nested_repeat_under_zero_count", "(a{0}){1000}"),
    ("nested_repeat_under_zero_or_more_within_budget", "(?:(?:a{2}){0,}){500}"),
    ("lazy_repeats", "a*?b+?c??d{2}?"),
    ("star_of_group_of_star", "(?:a*)*"),
    ("empty_alternative", "a|"),
    ("empty_group", "()"),
    ("escaped_braces", r"a\{2\}"),
    ("long_literal_under_size_limit", "^/[a-z]{1000}/(?:abcdefghij){100}$"),
    // Go's parsePerlFlags: flags applied one by one, any number of them, `-` then at least one.
    ("empty_flag_group", "(?)"),
    ("empty_flag_group_mid_pattern", "a(?)b"),
    ("empty_flag_group_inside_a_group", "(a(?)b)(?:(?))"),
    ("flag_set_and_cleared", "(?i-i)x"),
    ("flag_set_and_cleared_opening_a_group", "(?i-i:x)"),
    ("flag_repeated", "(?ii)x"),
    ("flag_repeated_after_negation", "(?-ii)x"),
    ("every_flag_set_and_cleared", "(?imsUimsU-UsmiUsmi:x)"),
    ("negated_flag", "(?-i)x"),
    ("empty_non_capturing_group", "(?:)"),
    ("flag_groups_after_a_capture_name", "(?P<n>(?ii)x)(?)"),
    ("flag_group_text_in_a_class", "[(?)][(?ii)]"),
    ("empty_flag_group_after_class_with_bracket_first", "[]a](?)"),
    ("empty_flag_group_after_ascii_class", "[[:alpha:]](?)"),
];

/// (case name, pattern, part of the expected message) that Go refuses, or reads differently.
const REJECTED: &[(&str, &str, &str)] = &[
    ("look_ahead", "(?=a)", "invalid or unsupported Perl syntax"),
    ("negative_look_ahead", "(?!a)", "invalid or unsupported Perl syntax"),
    ("look_behind", "(?<=a)b", "invalid or unsupported Perl syntax"),
    ("back_reference", r"(a)\1", "invalid escape sequence: `\\1`"),
    ("named_back_reference", "(?P<n>a)(?P=n)", "error parsing regexp"),
    ("k_back_reference", r"(?P<n>a)\k<n>", "invalid escape sequence"),
    ("escape_eight", r"\8", "invalid escape sequence"),
    ("class_intersection", "[a-z&&[aeiou]]", "set operation `&&`"),
    ("class_difference", "[a-z--b]", "set operation `--`"),
    ("class_symmetric_difference", "[a~~b]", "set operation `~~`"),
    ("nested_class", "[a[bc]]", "nested character class: `[bc]`"),
    ("word_start_angle", r"\<word", "ambiguous escape sequence: `\\<`"),
    ("word_end_angle", r"word\>", "ambiguous escape sequence: `\\>`"),
    ("word_boundary_start", r"\b{start}a", "unsupported word boundary assertion"),
    ("word_boundary_end", r"a\b{end}", "unsupported word boundary assertion"),
    ("word_boundary_start_half", r"\b{start-half}a", "unsupported word boundary assertion"),
    ("word_boundary_end_half", r"a\b{end-half}", "unsupported word boundary assertion"),
    ("flag_x", "(?x)a b", "invalid or unsupported Perl syntax"),
    ("flag_u", "(?u)a", "invalid or unsupported Perl syntax"),
    ("negated_flag_u", "(?-u:a)", "invalid or unsupported Perl syntax"),
    ("flag_crlf", "(?R)^a$", "invalid or unsupported Perl syntax"),
    ("flag_x_after_i", "(?ix:a)", "invalid or unsupported Perl syntax: `x`"),
    ("repeat_count_1001", "a{1001}", "invalid repeat count: `{1001}`"),
    ("repeat_range_to_1001", "a{2,1001}", "invalid repeat count: `{2,1001}`"),
    ("repeat_at_least_1001", "a{1001,}", "invalid repeat count: `{1001,}`"),
    ("repeat_min_above_max", "a{3,2}", "invalid repeat count"),
    ("nested_repeat_product_over_1000", "(a{10}){101}", "invalid repeat count: `{101}`"),
    ("triple_nested_repeat_product", "((a{10}){10}){11}", "invalid repeat count: `{11}`"),
    ("nested_repeat_in_alternation", "(?:a{2}|b{501}){2}", "invalid repeat count: `{2}`"),
    ("nested_unbounded_repeat_uses_min", "(?:a{20,}){51}", "invalid repeat count: `{51}`"),
    // `{0,}` does not end Go's walk as `{0}` does: the inner `{2}` exceeds the budget of 1.
    (
        "repeat_under_zero_or_more_keeps_the_budget",
        "(?:(?:a{2}){0,}){1000}",
        "invalid repeat count: `{1000}`",
    ),
    // Go 1.22 and later accept it, the Go of older cloudflared releases does not.
    (
        "named_group_angle_syntax",
        "(?<n>x)",
        "invalid or unsupported Perl syntax: `(?<n>x)` (cloudflared releases",
    ),
    // Unicode 14 and 15 scripts: unknown to Go 1.20.
    ("script_of_unicode_15", r"\p{Kawi}", "invalid character class range"),
    ("script_of_unicode_14", r"\p{Vithkuqi}", "invalid character class range"),
    ("stacked_stars", "a**", "invalid nested repetition operator: `**`"),
    ("star_after_plus", "a+*", "invalid nested repetition operator: `+*`"),
    ("stacked_counts", "a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
    ("possessive_star", "a*+", "invalid nested repetition operator"),
    ("lazy_then_quest", "a*??", "invalid nested repetition operator"),
    ("binary_property", r"\p{Alphabetic}", "invalid character class range: `\\p{Alphabetic}`"),
    ("script_extension_value", r"\p{scx=Greek}", "invalid character class range"),
    ("script_name_value", r"\p{Script=Greek}", "invalid character class range"),
    ("lower_case_script_name", r"\p{greek}", "invalid character class range"),
    ("long_category_name", r"\p{Letter}", "invalid character class range"),
    ("unassigned_category", r"\p{Cn}", "invalid character class range"),
    ("unknown_one_letter_category", r"\pX", "invalid character class range"),
    ("binary_property_in_class", r"[\p{Emoji}a]", "invalid character class range"),
    ("short_unicode_escape", r"\u0041", "invalid escape sequence: `\\u0041`"),
    ("long_unicode_escape", r"\U00000041", "invalid escape sequence"),
    ("braced_unicode_escape", r"\u{41}", "invalid escape sequence"),
    ("unicode_escape_in_class_range", r"[\u0041-Z]", "invalid escape sequence"),
    ("capture_name_with_dot", "(?P<a.b>x)", "invalid named capture: `a.b`"),
    ("capture_name_with_brackets", "(?P<a[0]>x)", "invalid named capture"),
    ("capture_name_non_ascii", "(?P<é>x)", "invalid named capture"),
    ("duplicate_capture_name", "(?P<n>a)(?P<n>b)", "duplicate capture group name"),
    ("unclosed_class", "[a", "missing closing ]"),
    ("unclosed_group", "(a", "missing closing )"),
    ("unopened_group", "a)", "unexpected )"),
    ("missing_repeat_argument", "*a", "missing argument to repetition operator"),
    ("trailing_backslash", "a\\", "trailing backslash at end of expression"),
    ("capital_z_anchor", r"a\Z", "invalid escape sequence"),
    ("atomic_group", "(?>a)", "invalid or unsupported Perl syntax"),
    ("comment_group", "(?#note)a", "error parsing regexp"),
    // Flag groups Go's parsePerlFlags refuses: a `-` with no flag after it, a second `-`, an
    // unknown flag, no `)` or `:`.
    ("dangling_negation", "(?-)", "invalid or unsupported Perl syntax"),
    ("dangling_negation_after_flag", "(?i-)", "invalid or unsupported Perl syntax"),
    ("dangling_negation_before_colon", "(?-:x)", "invalid or unsupported Perl syntax"),
    ("dangling_negation_after_flag_before_colon", "(?i-:x)", "invalid or unsupported Perl syntax"),
    ("second_negation", "(?i-m-s)", "invalid or unsupported Perl syntax"),
    ("double_negation", "(?--i)", "invalid or unsupported Perl syntax"),
    ("repeated_flag_then_unknown_flag", "(?ii-x)", "invalid or unsupported Perl syntax"),
    ("unclosed_flag_group", "(?i", "invalid or unsupported Perl syntax"),
    ("bare_group_opener", "(?", "error parsing regexp"),
    // `(?)` adds nothing for a repetition to apply to (it is not the empty group `(?:)`).
    ("star_after_only_an_empty_flag_group", "(?)*", "missing argument to repetition operator"),
    ("star_after_bar_and_empty_flag_group", "a|(?)*", "missing argument to repetition operator"),
    ("star_after_open_and_empty_flag_group", "((?)*)", "missing argument to repetition operator"),
    // Go reads no flag group here.
    ("escaped_paren_then_question", r"\(?)", "unexpected )"),
    ("flag_group_text_in_unicode_class_name", r"\p{Gr(?)eek}", "invalid character class range"),
    ("flag_group_text_in_hex_escape", r"\x{4(?)1}", "invalid escape sequence"),
    ("flag_group_text_in_capture_name", "(?P<a(?)b>x)", "invalid named capture"),
    // Go accepts these; regex-syntax does not, and refusing is the safe side.
    ("quoted_literal_stricter_than_go", r"\Qa.b\E", "invalid escape sequence"),
    ("literal_open_brace_stricter_than_go", "a{", "unclosed counted repetition"),
    ("empty_min_range_stricter_than_go", "x{,5}", "unclosed counted repetition"),
    // Go applies the `*` to the `a` (a flag group adds nothing to the expression).
    ("repeat_after_flag_group_stricter_than_go", "a(?i)*", "missing argument to repetition operator"),
    ("repeat_after_empty_flag_group_stricter_than_go", "a(?)*", "missing argument to repetition operator"),
];

#[test]
fn go_accepts_these_patterns() {
    let failures: Vec<String> = ACCEPTED
        .iter()
        .filter_map(|(name, pattern)| check(pattern).err().map(|err| format!("{name}: {pattern:?} → {err}")))
        .chain(ACCEPTED.iter().filter_map(|(name, pattern)| {
            full_check(pattern).err().map(|err| format!("{name} (full check): {pattern:?} → {err}"))
        }))
        .collect();
    assert!(failures.is_empty(), "wrongly rejected:\n{}", failures.join("\n"));
}

#[test]
fn go_rejects_these_patterns() {
    let failures: Vec<String> = REJECTED
        .iter()
        .filter_map(|(name, pattern, expected)| match check(pattern) {
            Ok(()) => Some(format!("{name}: {pattern:?} was accepted")),
            Err(Re2Error(message)) if !message.starts_with("error parsing regexp: ") => {
                Some(format!("{name}: {message:?} does not read like Go's error"))
            }
            Err(Re2Error(message)) if !message.contains(expected) => {
                Some(format!("{name}: {message:?} does not contain {expected:?}"))
            }
            Err(_) => None,
        })
        .collect();
    assert!(failures.is_empty(), "not rejected as expected:\n{}", failures.join("\n"));
}

#[test]
fn go_only_flag_groups_are_rewritten_to_what_they_mean() {
    for (written, text) in [
        ("(?ii)x", "(?i)x"),
        ("(?i-i)x", "(?-i)x"),
        ("(?mi-i:x)", "(?m-i:x)"),
        ("(?-ii)x", "(?-i)x"),
        // `(?)` restates `i` as it is there: set inside a group that set it, until its `)`.
        ("(?)a", "(?-i)a"),
        ("(?i:(?)a)(?)b", "(?i:(?i)a)(?-i)b"),
        ("(?i)(a(?))(?)", "(?i)(a(?i))(?i)"),
        ("(?P<n>(?i)(?))(?)", "(?P<n>(?i)(?i))(?-i)"),
        // Left as written: groups regex-syntax reads, groups Go refuses, text Go reads no group in.
        ("(?i-m:x)(?:)(?s)", "(?i-m:x)(?:)(?s)"),
        ("(?ii-)(?i-i-m)", "(?ii-)(?i-i-m)"),
        (r"\(?)[(?)(?ii)][[:a(?):]](?)", r"\(?)[(?)(?ii)][[:a(?):]](?-i)"),
        (r"\p{(?)}\x{(?)}(?P<(?)>)", r"\p{(?)}\x{(?)}(?P<(?)>)"),
        (r"\Q(?)\E(?)", r"\Q(?)\E(?)"),
    ] {
        assert_eq!(Source::new(written).text, text, "{written}");
    }
}

#[test]
fn errors_quote_the_pattern_as_written() {
    for (pattern, quoted) in [
        ("(?ii)a{1001}", "`{1001}`"),
        ("(?i-i)x(?)y[z-a]", "`z-a`"),
        ("(?)(?ii)(?P<a.b>x)", "`a.b`"),
        ("(?ii)(?u)", "`u`"),
        ("(?)*", "`(?)*`"),
    ] {
        let Err(Re2Error(message)) = check(pattern) else { panic!("{pattern} was accepted") };
        assert!(message.contains(quoted), "{pattern}: {message}");
    }
}

#[test]
fn expression_too_large_names_go_error() {
    let pattern = format!("(?:{}){{1000}}", "x".repeat(4000));
    let Err(Re2Error(message)) = check(&pattern) else { panic!("a 4M-instruction program was accepted") };
    assert!(message.starts_with("error parsing regexp: expression too large"), "{message}");
}

#[test]
fn go_script_names_are_unicode_scripts() {
    // Every name in our list is a script regex-syntax knows too (it may know newer ones).
    for name in GO_SCRIPTS.split(' ') {
        let pattern = format!(r"\p{{{name}}}");
        let parsed = regex_syntax::ParserBuilder::new().build().parse(&pattern);
        assert!(parsed.is_ok(), "{name} is not a script regex-syntax knows");
        assert!(check(&pattern).is_ok(), "{name}");
    }
    // Unicode 13.0 (Go 1.20) counts 154 scripts; Go's table also has Common and Inherited.
    assert_eq!(GO_SCRIPTS.split(' ').count(), 156);
}

#[test]
fn regex_syntax_escape_of_any_character_is_accepted() {
    // path.rs escapes literal path values with regex_syntax::escape: Go must accept the result.
    let all: String = (' '..='~').chain(['é', '☃', '\u{10FFFF}']).collect();
    for c in all.chars() {
        let escaped = regex_syntax::escape(&c.to_string());
        assert!(check(&escaped).is_ok(), "{c:?} escaped as {escaped:?}: {:?}", check(&escaped));
    }
    assert_eq!(check(&format!("^{}$", regex_syntax::escape(&all))), Ok(()));
}

/// The shapes routes carry, which the fast path must take without the full parse: what
/// path.rs renders, and common RegularExpression values.
const PLAIN: &[&str] = &[
    "",
    "^/api$",
    "^/api(?s:/.*)?$",
    "^(?:/r1/v[0-9]+/.*)$",
    r"^/S\.v1/[^/]+$",
    r"^/(?:pkg\.Svc)/(?:Get|List)$",
    r"^(?:/users/\d+/?(?:profile)?)$",
    "(?i:/Docs)/[a-z_A-Z0-9é]*?",
    r"/a\.b\-c\/d\\e\(\)\[\]\{\}\*\+\?\|\^\$",
    r"[\d.\-a-f]+",
    "()",
    "/caf\u{e9}/\u{2603}",
];

#[test]
fn plain_patterns_take_the_fast_path() {
    for pattern in PLAIN {
        assert!(plainly_valid(pattern), "{pattern:?} should not need the full parse");
        assert_eq!(full_check(pattern), Ok(()), "{pattern:?}");
    }
}

#[test]
fn fast_path_defers_everything_else() {
    // Valid or not, these need the full check: it must decide, never the fast path.
    for pattern in [
        "a{2}",
        "a**",
        "*a",
        "(a",
        "a)",
        "[a",
        "[]a]",
        "[^]",
        "[z-a]",
        "[a-]",
        "[a[b]]",
        "[[:alpha:]]",
        "[a&&b]",
        "[a~~b]",
        "[a--b]",
        r"\x41",
        r"\pL",
        r"\1",
        r"\Q",
        r"\b",
        "(?i)a",
        "(?ii:a)",
        "(?i-s:a)",
        "(?P<n>a)",
        "(?<n>a)",
        "(?=a)",
        "(?:)*",
        "^*",
        "a|*",
        "}",
        "]",
        "(?x:a)",
        "(?u:a)",
        "a\\",
    ] {
        assert!(!plainly_valid(pattern), "{pattern:?} took the fast path");
    }
    let deep = format!("{}a{}", "(".repeat(101), ")".repeat(101));
    assert!(!plainly_valid(&deep));
    assert!(!plainly_valid(&"a".repeat(PLAIN_MAX_LEN + 1)));
}

/// [`plainly_valid`] as it was before it took runs of literal characters at once: it must
/// give the same answers.
fn plainly_valid_before(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    if b.len() > PLAIN_MAX_LEN {
        return false;
    }
    let mut i = 0;
    let mut depth = 0u32;
    // The last item can take a repetition operator; the last item opened a group.
    let (mut atom, mut opened) = (false, false);
    while i < b.len() {
        let was_opened = std::mem::take(&mut opened);
        match b[i] {
            b'\\' => {
                if !b.get(i + 1).is_some_and(|e| PLAIN_ESCAPES.contains(e)) {
                    return false;
                }
                i += 2;
                atom = true;
            }
            b'*' | b'+' | b'?' => {
                if !atom {
                    return false;
                }
                i += if b.get(i + 1) == Some(&b'?') { 2 } else { 1 };
                atom = false;
            }
            b'(' => {
                i += 1;
                if b.get(i) == Some(&b'?') {
                    let mut seen = 0u8;
                    i += 1;
                    while let Some(bit) = b.get(i).and_then(|f| match f {
                        b'i' => Some(1u8),
                        b'm' => Some(2),
                        b's' => Some(4),
                        b'U' => Some(8),
                        _ => None,
                    }) {
                        if seen & bit != 0 {
                            return false;
                        }
                        seen |= bit;
                        i += 1;
                    }
                    if b.get(i) != Some(&b':') {
                        return false;
                    }
                    i += 1;
                }
                depth += 1;
                if depth > PLAIN_MAX_DEPTH {
                    return false;
                }
                (atom, opened) = (false, true);
            }
            b')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                i += 1;
                // An empty group takes no repetition here: the full check decides.
                atom = !was_opened;
            }
            b'|' | b'^' | b'$' => {
                i += 1;
                atom = false;
            }
            b'[' => match plain_class_end_before(b, i) {
                Some(end) => {
                    i = end;
                    atom = true;
                }
                None => return false,
            },
            b'{' | b'}' | b']' => return false,
            _ => {
                // A literal character (any other byte starts one), or `.`.
                i += utf8_len(b[i]);
                atom = true;
            }
        }
    }
    depth == 0
}

fn plain_class_end_before(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    let first = i;
    // A character of the class, for a range's ends: (value, index after it).
    let plain_char = |i: usize| -> Option<(char, usize)> {
        match *b.get(i)? {
            b']' | b'[' | b'\\' | b'-' | b'&' | b'~' => None,
            lead => {
                let end = i + utf8_len(lead);
                std::str::from_utf8(b.get(i..end)?).ok()?.chars().next().map(|c| (c, end))
            }
        }
    };
    loop {
        match *b.get(i)? {
            b']' if i > first => return Some(i + 1),
            b'\\' => {
                if !b.get(i + 1).is_some_and(|e| PLAIN_ESCAPES.contains(e)) || b.get(i + 2) == Some(&b'-') {
                    return None;
                }
                i += 2;
            }
            _ => {
                let (low, next) = plain_char(i)?;
                if b.get(next) == Some(&b'-') {
                    let (high, end) = plain_char(next + 1)?;
                    if high < low || b.get(end) == Some(&b'-') {
                        return None;
                    }
                    i = end;
                } else {
                    i = next;
                }
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// Taking runs of literal characters at once changes no answer of the recogniser.
    #[test]
    fn plain_recogniser_answers_as_before(
        tokens in proptest::collection::vec(proptest::sample::select(vec![
            "a", "Z", "/", "-", ".", "_", "#", " ", "é", "\u{2603}", "*", "+", "?", "??", "(", ")", "(?:",
            "(?i:", "(?", "|", "^", "$", "[", "]", "[^", "a-z", "z-a", "é-ü", "a-é", "0-9", "\\", r"\d",
            r"\.", r"\-", r"\x", "&", "~", "{", "}", "{2}", "--", ":", "a-a", "[0-9]", "[^a-z]", "[é-é]",
        ]), 0..24)
    ) {
        let pattern: String = tokens.concat();
        proptest::prop_assert_eq!(plainly_valid(&pattern), plainly_valid_before(&pattern), "{:?}", pattern);
    }

    /// The fast path only ever says yes to what the full check accepts.
    #[test]
    fn plain_patterns_pass_the_full_check(
        tokens in proptest::collection::vec(proptest::sample::select(vec![
            "a", "Z", "/", "-", ".", "_", "#", " ", "é", "*", "+", "?", "??", "(", ")", "(?:", "(?i:",
            "(?sm:", "(?U:", "(?ii:", "(?", "|", "^", "$", "[", "]", "[^", "a-z", "z-a", "0-9", "\\",
            r"\d", r"\.", r"\-", r"\W", r"\x", r"\1", "&", "~", "{", "}", "{2}", "--", ":",
        ]), 0..24)
    ) {
        let pattern: String = tokens.concat();
        if plainly_valid(&pattern) {
            proptest::prop_assert_eq!(full_check(&pattern), Ok(()), "{:?}", pattern);
        }
    }
}

//! Text read from files (names, paths, values) as it goes into a log line. A text-format log
//! is one event per line: a name holding a line break (YAML `name: "a\nWARN all is well"`)
//! would otherwise write a line of its own choosing, and an escape sequence could rewrite the
//! terminal. (Names from the Kubernetes API are DNS labels; files have no such rule.)

use std::borrow::Cow;

/// `text` with control characters (line breaks, escapes, C1 controls) and the Unicode line and
/// paragraph separators written as Rust escapes (`\n`, `\u{1b}`); anything else as it is.
pub fn escaped(text: &str) -> Cow<'_, str> {
    let escape = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn line_breaks_and_escapes_are_written_out_and_the_rest_kept() {
        let cases = [
            ("plain", "HTTPRoute web/a: fine", "HTTPRoute web/a: fine"),
            ("newline", "a\nWARN forged", "a\\nWARN forged"),
            ("carriage_return", "a\rb", "a\\rb"),
            ("escape_sequence", "a\u{1b}[2Kb", "a\\u{1b}[2Kb"),
            ("next_line_c1", "a\u{85}b", "a\\u{85}b"),
            ("line_separator", "a\u{2028}b\u{2029}c", "a\\u{2028}b\\u{2029}c"),
            ("other_unicode_kept", "café ü 日本", "café ü 日本"),
        ];
        for (name, text, want) in cases {
            assert_eq!(escaped(text), want, "{name}");
        }
    }
}

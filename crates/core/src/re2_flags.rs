//! Go's flag groups, `(?flags)` and `(?flags:re)`, as Go reads them.
//!
//! Go's `parsePerlFlags` (regexp/syntax/parse.go) takes, after `(?`, any number of the flags
//! `i m s U`, then at most one `-` that must be followed by at least one flag, then `)` or `:`.
//! It applies the flags one by one, so a flag may come twice (`(?ii)`, which is `(?i)`) or be
//! set and then cleared (`(?i-i)`, which is `(?-i)`), and no flag at all is fine: `(?)`
//! changes nothing, `(?:` opens a plain group. It refuses `(?-)`, `(?i-)`, `(?-:`, a second
//! `-` and every other character. regex-syntax refuses those three Go-valid forms, so
//! [`Source::new`] rewrites each into the group that means the same to Go and that
//! regex-syntax reads:
//! - a flag twice, or set and cleared: each flag once, cleared if the group clears it
//!   (`(?ii)` → `(?i)`, `(?mi-i:` → `(?m-i:`);
//! - `(?)`: `(?i)` or `(?-i)`, whichever `i` already is there. The flags in force are tracked
//!   as Go tracks them: a group restores, at its `)`, the flags in force at its `(`.
//!
//! Any other group is left as written, for regex-syntax and re2.rs's checks to judge, and a
//! group Go refuses is never rewritten, so it is still refused. The scan tokenizes as Go does,
//! so that it rewrites only what Go reads as a flag group: not after a `\`, not in a character
//! class (whose end it finds as `parseClass` does), not in `\p{…}`, `\x{…}` or a capture name,
//! and nothing after `\Q` (which regex-syntax refuses anyway). Error messages quote the
//! pattern as written: [`Source::written`] maps spans of the rewritten text back.

use std::borrow::Cow;
use std::ops::Range;

use regex_syntax::ast::{Flag, Flags, FlagsItemKind, Span};

/// A pattern as written, and the text regex-syntax is given.
pub(super) struct Source<'p> {
    pub(super) written: &'p str,
    pub(super) text: Cow<'p, str>,
    /// The rewritten groups, in order: where each is in `text`, and where in `written`.
    edits: Vec<(Range<usize>, Range<usize>)>,
}

/// The flags of [`Group`], one bit each.
const FLAGS: [(u8, char); 4] = [(1, 'i'), (2, 'm'), (4, 's'), (8, 'U')];
const FOLD_CASE: u8 = 1;

/// A flag group Go accepts.
struct Group {
    set: u8,
    cleared: u8,
    /// It ends with `:`, opening a group, rather than `)`.
    opens: bool,
    /// Index after its `:` or `)`.
    end: usize,
    /// regex-syntax refuses it as written: a flag twice, or no flag and `)`.
    rewrite: bool,
}

impl Source<'_> {
    pub(super) fn new(pattern: &str) -> Source<'_> {
        let mut source = Source { written: pattern, text: Cow::Borrowed(pattern), edits: Vec::new() };
        if !pattern.contains("(?") {
            return source;
        }
        let b = pattern.as_bytes();
        let mut text = String::new();
        // The flags in force, and those to restore at each open group's `)`.
        let (mut flags, mut saved) = (0u8, Vec::new());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                // Go reads everything up to `\E` as literal text; regex-syntax refuses `\Q`.
                b'\\' if b.get(i + 1) == Some(&b'Q') => break,
                b'\\' => i = escape_end(b, i),
                b'[' => i = class_end(b, i),
                b')' => {
                    flags = saved.pop().unwrap_or(flags);
                    i += 1;
                }
                b'(' if b.get(i + 1) != Some(&b'?') => {
                    saved.push(flags);
                    i += 1;
                }
                // `(?P<name>` or `(?<name>`: Go takes the name up to the first `>`.
                b'(' if b.get(i + 2) == Some(&b'<') || b.get(i + 2..i + 4) == Some(b"P<") => {
                    saved.push(flags);
                    i = find(b, i, b">").map_or(b.len(), |at| at + 1);
                }
                b'(' => match go_flag_group(b, i + 2) {
                    None => i += 2,
                    Some(group) => {
                        if group.rewrite {
                            let (set, cleared) = match (group.set | group.cleared, flags & FOLD_CASE) {
                                (0, 0) => (0, FOLD_CASE),
                                (0, _) => (FOLD_CASE, 0),
                                _ => (group.set, group.cleared),
                            };
                            text.push_str(&pattern[source.edits.last().map_or(0, |e| e.1.end)..i]);
                            let start = text.len();
                            text.push_str("(?");
                            text.extend(FLAGS.iter().filter(|(bit, _)| set & bit != 0).map(|(_, c)| c));
                            if cleared != 0 {
                                text.push('-');
                                text.extend(
                                    FLAGS.iter().filter(|(bit, _)| cleared & bit != 0).map(|(_, c)| c),
                                );
                            }
                            text.push(if group.opens { ':' } else { ')' });
                            source.edits.push((start..text.len(), i..group.end));
                        }
                        if group.opens {
                            saved.push(flags);
                        }
                        flags = (flags | group.set) & !group.cleared;
                        i = group.end;
                    }
                },
                _ => i += 1,
            }
        }
        if let Some((_, last)) = source.edits.last() {
            text.push_str(&pattern[last.end..]);
            source.text = Cow::Owned(text);
        }
        source
    }

    /// The part of the pattern as written that `span` of [`Source::text`] stands for; the
    /// whole pattern when that is empty.
    pub(super) fn written(&self, span: &Span) -> &str {
        let (start, end) =
            (self.to_written(span.start.offset, false), self.to_written(span.end.offset, true));
        match self.written.get(start..end) {
            Some(part) if !part.is_empty() => part,
            _ => self.written,
        }
    }

    /// An offset into `text` as an offset into `written`; inside a rewritten group, the start
    /// or (`end`) the end of the group as written.
    fn to_written(&self, offset: usize, end: bool) -> usize {
        let mut shift = 0isize;
        for (text, written) in &self.edits {
            if offset <= text.start {
                break;
            }
            if offset < text.end {
                return if end { written.end } else { written.start };
            }
            shift = written.end as isize - text.end as isize;
        }
        offset.saturating_add_signed(shift)
    }
}

/// The first flag in `flags` that Go does not know: its `parsePerlFlags` knows only i, m, s and U.
pub(super) fn unknown_flag(flags: &Flags) -> Option<&Span> {
    flags.items.iter().find_map(|item| match item.kind {
        FlagsItemKind::Negation
        | FlagsItemKind::Flag(
            Flag::CaseInsensitive | Flag::MultiLine | Flag::DotMatchesNewLine | Flag::SwapGreed,
        ) => None,
        FlagsItemKind::Flag(Flag::Unicode | Flag::CRLF | Flag::IgnoreWhitespace) => Some(&item.span),
    })
}

/// Go's `parsePerlFlags` on the flags starting at `b[start]` (just after `(?`); `None` when Go
/// refuses them.
fn go_flag_group(b: &[u8], start: usize) -> Option<Group> {
    let (mut set, mut cleared, mut seen) = (0u8, 0u8, 0u8);
    // After the `-`; whether a flag came since (Go's `sign < 0` and `sawFlag`).
    let (mut negated, mut saw_flag, mut rewrite) = (false, false, false);
    let mut i = start;
    loop {
        let c = *b.get(i)?;
        i += 1;
        match FLAGS.iter().find(|(_, flag)| *flag as u8 == c) {
            Some((bit, _)) => {
                rewrite |= seen & bit != 0;
                seen |= bit;
                if negated {
                    cleared |= bit;
                    set &= !bit;
                } else {
                    set |= bit;
                }
                saw_flag = true;
            }
            None => match c {
                b'-' if !negated => (negated, saw_flag) = (true, false),
                b':' | b')' if !negated || saw_flag => {
                    let opens = c == b':';
                    rewrite |= seen == 0 && !opens;
                    return Some(Group { set, cleared, opens, end: i, rewrite });
                }
                _ => return None,
            },
        }
    }
}

/// The index after the escape at `b[i]` (a `\`): `\p{…}`, `\P{…}` and `\x{…}` run to the first
/// `}`, as Go reads them.
fn escape_end(b: &[u8], i: usize) -> usize {
    match (b.get(i + 1), b.get(i + 2)) {
        (Some(b'p' | b'P' | b'x'), Some(b'{')) => find(b, i + 3, b"}").map_or(b.len(), |at| at + 1),
        _ => (i + 2).min(b.len()),
    }
}

/// The index after the character class that opens at `b[start]` (a `[`), found as Go's
/// `parseClass` finds it: a `]` first (after `[` or `[^`) is a literal, `[:` runs to the next
/// `:]` when there is one (Go then requires a known name), escapes are skipped whole.
/// `b.len()` when the class is not closed.
fn class_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    let first = i;
    while i < b.len() {
        match b[i] {
            b']' if i > first => return i + 1,
            b'[' if b.get(i + 1) == Some(&b':') => i = find(b, i + 2, b":]").map_or(i + 1, |at| at + 2),
            b'\\' => i = escape_end(b, i),
            _ => i += 1,
        }
    }
    b.len()
}

/// The index of the first `needle` in `b` at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|at| from + at)
}

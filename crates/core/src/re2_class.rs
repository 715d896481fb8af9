//! [`plain_class_end`]: the bracketed classes [`super::plainly_valid`] takes without the full
//! check.

use super::{utf8_len, PLAIN_ESCAPES};

/// The index after the `]` closing the bracketed class that starts at `b[start]`, when it is
/// plain: characters and ordered ranges of them, `\d`-style classes and escaped punctuation,
/// optionally negated; no `[` inside (POSIX classes, nesting), no `-` outside a range, no `&`
/// or `~` (regex-syntax's set operations), not empty, not starting with `]`. Each byte's part
/// is looked up in [`CLASS_BYTE`], so that an ASCII character (most) takes one test.
pub(super) fn plain_class_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    let first = i;
    // A character of the class (its value, the index after it) led by `lead` at `i`: for a
    // range's ends, no `]` and no escape.
    let plain_char = |lead: u8, i: usize| -> Option<(u32, usize)> {
        match CLASS_BYTE[usize::from(lead)] {
            CLASS_CHAR => Some((u32::from(lead), i + 1)),
            CLASS_LEAD => {
                let end = i + utf8_len(lead);
                std::str::from_utf8(b.get(i..end)?).ok()?.chars().next().map(|c| (u32::from(c), end))
            }
            _ => None,
        }
    };
    loop {
        let c = *b.get(i)?;
        let (low, next) = match CLASS_BYTE[usize::from(c)] {
            CLASS_CLOSE if i > first => return Some(i + 1),
            CLASS_ESCAPE => {
                if !b.get(i + 1).is_some_and(|e| PLAIN_ESCAPES.contains(e)) || b.get(i + 2) == Some(&b'-') {
                    return None;
                }
                i += 2;
                continue;
            }
            _ => plain_char(c, i)?,
        };
        if b.get(next) != Some(&b'-') {
            i = next;
            continue;
        }
        let (high, end) = plain_char(*b.get(next + 1)?, next + 1)?;
        if high < low || b.get(end) == Some(&b'-') {
            return None;
        }
        i = end;
    }
}

/// [`CLASS_BYTE`]: an ASCII character of a class by itself.
const CLASS_CHAR: u8 = 0;
/// `]`, which closes the class (unless it comes first).
const CLASS_CLOSE: u8 = 1;
/// `\`, an escape.
const CLASS_ESCAPE: u8 = 2;
/// The first byte of a character past ASCII.
const CLASS_LEAD: u8 = 3;
/// `[`, `-`, `&` and `~`, which [`plain_class_end`] leaves to the full check.
const CLASS_OTHER: u8 = 4;

/// What each byte is inside a bracketed class, for [`plain_class_end`].
const CLASS_BYTE: [u8; 256] = {
    let mut table = [CLASS_CHAR; 256];
    let mut b = 0x80;
    while b < 256 {
        table[b] = CLASS_LEAD;
        b += 1;
    }
    table[b']' as usize] = CLASS_CLOSE;
    table[b'\\' as usize] = CLASS_ESCAPE;
    table[b'[' as usize] = CLASS_OTHER;
    table[b'-' as usize] = CLASS_OTHER;
    table[b'&' as usize] = CLASS_OTHER;
    table[b'~' as usize] = CLASS_OTHER;
    table
};

//! The hash [`crate::translate`]'s ordering compares rendered paths by ([`path_hash`]), and
//! the forms of path it knows: [`super::http_path_append`] gives the same hash from a match's
//! value as it writes the path, without reading the path back.

/// The forms of path [`path_hash`] knows by their fixed head and tail, hashed by what is between
/// (for a literal's forms, the literal: what is between, unescaped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PathForm {
    /// Any other.
    Other = 0,
    /// `^(?:…)$`, a regular expression.
    Regex = 1,
    /// `^…(?s:/.*)?$`, a prefix, between the two an escaped literal ([`unescaped`]).
    Prefix = 2,
    /// `^…$`, an exact path (or a gRPC method of two names), between the two an escaped literal.
    Exact = 3,
    /// `^…(?s:/.*)?$` with anything else between: hashed as written.
    PrefixPattern = 4,
    /// `^…$` with anything else between (a gRPC method with a pattern): hashed as written.
    ExactPattern = 5,
}

/// The tail of a prefix's path.
pub(super) const PREFIX_TAIL: &str = "(?s:/.*)?$";

/// A hash of a rendered path's bytes, never 0 (which stands for "no path"): the hash of
/// [`hashed`]'s form and bytes, which differ for different paths, so that equal paths have
/// equal hashes and different ones collide only by chance. [`super::http_path_append`] gives
/// the same hash from the value alone, without reading the path it wrote: a literal's form and
/// the literal itself, escaped in the path or not.
pub(crate) fn path_hash(path: impl AsRef<[u8]>) -> u64 {
    let (form, bytes) = hashed(path.as_ref());
    hash_of(form, &bytes)
}

/// What [`path_hash`] hashes of `path`: its form, found by its fixed head and tail (the forms
/// tried in a fixed order), and the part between them, unescaped for a literal's forms. One
/// path gives one pair, and two paths one pair only if they are the same: the form and its
/// head and tail give back the path from the part between, and an escaped literal (and only
/// one) from its unescaped bytes (`path_tests::hashed_parts_tell_paths_apart`).
pub(super) fn hashed(path: &[u8]) -> (PathForm, std::borrow::Cow<'_, [u8]>) {
    use std::borrow::Cow;
    let between = |head: &[u8], tail: &[u8]| path.strip_prefix(head).and_then(|p| p.strip_suffix(tail));
    let literal = |middle, literal_form, pattern_form| match unescaped(middle) {
        Some(literal) => (literal_form, literal),
        None => (pattern_form, Cow::Borrowed(middle)),
    };
    if let Some(middle) = between(b"^(?:", b")$") {
        (PathForm::Regex, Cow::Borrowed(middle))
    } else if let Some(middle) = between(b"^", PREFIX_TAIL.as_bytes()) {
        literal(middle, PathForm::Prefix, PathForm::PrefixPattern)
    } else if let Some(middle) = between(b"^", b"$") {
        literal(middle, PathForm::Exact, PathForm::ExactPattern)
    } else {
        (PathForm::Other, Cow::Borrowed(path))
    }
}

/// The literal `escaped` is the escape of ([`super::escape`]: a backslash before each meta
/// character), or `None` when it is not one: a meta character without a backslash before it,
/// a backslash before anything else (a `\x{..}` escape of an unprintable character), or at
/// the end.
fn unescaped(escaped: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if !escaped.iter().any(|&b| META_BYTE[b as usize]) {
        // No meta character, so no backslash either: the literal as it is.
        return Some(std::borrow::Cow::Borrowed(escaped));
    }
    let mut literal = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&meta) if META_BYTE[meta as usize] => literal.push(meta),
                _ => return None,
            },
            _ if META_BYTE[b as usize] => return None,
            _ => literal.push(b),
        }
    }
    Some(std::borrow::Cow::Owned(literal))
}

pub(super) fn hash_of(form: PathForm, middle: &[u8]) -> u64 {
    use std::hash::Hasher;
    // The form as the hasher's seed: one step fewer than writing it after the bytes.
    let mut hasher = rustc_hash::FxHasher::with_seed(form as usize);
    hasher.write(middle);
    hasher.finish().max(1)
}

/// The bytes RE2 reads as operators, which [`super::escape`] writes with a backslash before them: the
/// meta characters of regex-syntax (`path_tests::meta_bytes_are_regex_syntax_meta_characters`).
pub(super) const META_CHARACTERS: &[u8] = b"\\.+*?()|[]{}^$#&-~";

/// Whether each byte is one of [`META_CHARACTERS`].
pub(super) const META_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < META_CHARACTERS.len() {
        table[META_CHARACTERS[i] as usize] = true;
        i += 1;
    }
    table
};

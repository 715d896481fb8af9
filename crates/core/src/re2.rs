//! Would Go's `regexp.Compile` accept this pattern?
//!
//! cloudflared compiles every rule's `path:` with Go's `regexp.Compile` (RE2 syntax, Perl flags)
//! and refuses to start when that fails ("Rule #N has an invalid regex"). We cannot run Go, so we
//! parse with `regex_syntax`'s AST parser, which already rejects look-around and
//! back-references as RE2 does, and then walk the AST to reject what regex-syntax accepts but Go
//! does not, or reads differently:
//!
//! - class set operations `&&` `--` `~~` and nested classes `[a[b]]` (Go reads `&`, `-`, `~`
//!   and `[` inside a class as literals, so the pattern would mean something else);
//! - the word-boundary assertions other than `\b` `\B`: `\b{start}` & co. (Go reads `\b` then
//!   the literal text `{start}`) and `\<` `\>` (Go reads a literal `<` `>`);
//! - the flags `u`, `R`, `x` (Go knows only `i m s U`);
//! - `\u0041` / `\U00000041` escapes and a lone octal digit `\1` (Go: a back-reference);
//! - repetition counts above 1000 and nested counted repetitions whose bounds multiply past
//!   1000 (Go: "invalid repeat count"), stacked repetition operators `a**` (Go: "invalid nested
//!   repetition operator"), and programs past Go's size budget ("expression too large");
//! - Unicode classes other than Go's general categories, `Any` and script names;
//! - capture names outside `[A-Za-z0-9_]`.
//!
//! Flag groups Go accepts and regex-syntax does not (`(?)`, `(?ii)`, `(?i-i)`) are first
//! rewritten into the groups that mean the same (re2_flags.rs).
//!
//! The check errs on the safe side: a few patterns Go accepts are refused because regex-syntax
//! refuses them (`\Q…\E`, a literal `{` that does not start a repetition, a repetition operator
//! right after a flag group, as in `a(?i)*`, a capture name starting with a digit, nesting
//! deeper than 250 instead of Go's 1000), and Unicode class names must be spelled exactly as in
//! Go's tables (newer Go also accepts aliases and loose spelling). Where Go versions differ, the
//! oldest that cloudflared (2023.7 and later) was built with decides: `(?<name>x)` is refused
//! (Go 1.22 and later accept it; `(?P<name>x)` works in all), and script names are Unicode
//! 13's (Go 1.20), not Unicode 15's (Go 1.21).

use regex_syntax::ast::parse::ParserBuilder;
use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassSetBinaryOp, ClassSetBinaryOpKind, ClassSetItem, ClassUnicode,
    ClassUnicodeKind, ErrorKind, Flags, GroupKind, HexLiteralKind, Literal, LiteralKind, Repetition,
    RepetitionKind, RepetitionRange, Span,
};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Re2Error(pub String);

/// Go's `syntax` package: "the maximum repeat count is 1000".
const MAX_REPEAT: u32 = 1000;
/// Go's `syntax.maxSize`: `128 << 20 / instSize` with `instSize = 5 * 8` bytes.
const MAX_PROGRAM_SIZE: u64 = (128 << 20) / 40;

/// Ok when Go's regexp.Compile would accept `pattern`.
pub fn check(pattern: &str) -> Result<(), Re2Error> {
    if plainly_valid(pattern) {
        return Ok(());
    }
    full_check(pattern)
}

/// The whole check: regex-syntax's parser, then the walk over its AST. About 20,000
/// instructions and a dozen allocations per pattern, which is why [`plainly_valid`] comes first.
fn full_check(pattern: &str) -> Result<(), Re2Error> {
    let source = Source::new(pattern);
    let ast = parser().parse(&source.text).map_err(|err| parse_error(&source, &err))?;
    ast::visit(&ast, Checker { source: &source })?;
    if program_size(&ast) > MAX_PROGRAM_SIZE {
        return Err(go_error("expression too large", pattern));
    }
    Ok(())
}

/// regex-syntax's tree of `pattern` as Go reads it (with its flag groups rewritten, so its spans
/// are of the rewritten text); `None` when regex-syntax cannot parse it.
pub(crate) fn go_ast(pattern: &str) -> Option<Ast> {
    parser().parse(&Source::new(pattern).text).ok()
}

/// Octal escapes on: Go accepts `\0`, `\12`, `\123`; a lone `\1`..`\7` is refused by the checks.
fn parser() -> ast::parse::Parser {
    ParserBuilder::new().octal(true).build()
}

#[path = "re2_class.rs"]
mod class;
use class::plain_class_end;

/// Longest pattern [`plainly_valid`] looks at: far below every size limit of Go's parser.
const PLAIN_MAX_LEN: usize = 4096;
/// Deepest group nesting [`plainly_valid`] accepts (Go allows 1000, regex-syntax 250).
const PLAIN_MAX_DEPTH: u32 = 100;
/// Characters a backslash may escape in [`plainly_valid`]: punctuation both Go and regex-syntax
/// read as the character itself, and the Perl classes.
const PLAIN_ESCAPES: &[u8] = b".+*?()|[]{}^$/-\\dDwWsS";

/// A conservative recogniser of the patterns routes usually carry, without parsing them into
/// a tree: literal characters, escaped punctuation, `.`, the Perl classes `\d \w \s` (and
/// negations), bracketed classes of characters and ordered ranges, one of `* + ?` (optionally
/// lazy) after an atom, groups `( )`, `(?: )` and `(?flags: )` with distinct flags of `i m s U`,
/// `|`, `^` and `$`. No counted repetition, no other escape, no nesting past
/// [`PLAIN_MAX_DEPTH`]: so no size limit of Go's can be reached. Every pattern it accepts is
/// accepted by Go and by [`full_check`] (`re2_tests::plain_patterns_pass_the_full_check`
/// holds it to that); `false` says nothing, and the full check decides.
pub(crate) fn plainly_valid(pattern: &str) -> bool {
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
            b'[' => match plain_class_end(b, i) {
                Some(end) => {
                    i = end;
                    atom = true;
                }
                None => return false,
            },
            b'{' | b'}' | b']' => return false,
            _ => {
                // A literal character (any other byte starts one), or `.`; and the ASCII ones
                // after it at once, as many turns of this loop would take them.
                i += utf8_len(b[i]);
                while i < b.len() && PLAIN_LITERAL[b[i] as usize] {
                    i += 1;
                }
                atom = true;
            }
        }
    }
    depth == 0
}

/// ASCII bytes that [`plainly_valid`] reads as one literal character (or `.`): all but those
/// its loop gives a meaning.
const PLAIN_LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x80 {
        table[b] = !matches!(
            b as u8,
            b'\\' | b'*' | b'+' | b'?' | b'(' | b')' | b'|' | b'^' | b'$' | b'[' | b'{' | b'}' | b']'
        );
        b += 1;
    }
    table
};

/// Length of the UTF-8 sequence led by `lead` (the input is a `str`, so it is well formed).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Go's `*syntax.Error` text: "error parsing regexp: " + code + ": `" + expr + "`".
fn go_error(code: &str, expr: &str) -> Re2Error {
    Re2Error(format!("error parsing regexp: {code}: `{expr}`"))
}

/// [`go_error`] followed by why we refuse it and how to write it instead.
fn go_error_hint(code: &str, expr: &str, hint: &str) -> Re2Error {
    Re2Error(format!("error parsing regexp: {code}: `{expr}` ({hint})"))
}

/// Translate a regex-syntax parse error into the closest Go error code.
fn parse_error(source: &Source<'_>, err: &ast::Error) -> Re2Error {
    let code = match err.kind() {
        ErrorKind::CaptureLimitExceeded => "expression too large",
        ErrorKind::ClassEscapeInvalid
        | ErrorKind::EscapeHexEmpty
        | ErrorKind::EscapeHexInvalid
        | ErrorKind::EscapeHexInvalidDigit
        | ErrorKind::EscapeUnrecognized
        | ErrorKind::UnsupportedBackreference => "invalid escape sequence",
        ErrorKind::ClassRangeInvalid | ErrorKind::ClassRangeLiteral | ErrorKind::UnicodeClassInvalid => {
            "invalid character class range"
        }
        ErrorKind::ClassUnclosed => "missing closing ]",
        ErrorKind::DecimalEmpty | ErrorKind::DecimalInvalid | ErrorKind::RepetitionCountInvalid => {
            "invalid repeat count"
        }
        // Go reads a `{` that does not start a valid repetition as a literal; regex-syntax
        // refuses it. Refusing is the safe side; say how to write it.
        ErrorKind::RepetitionCountDecimalEmpty | ErrorKind::RepetitionCountUnclosed => {
            return go_error_hint(
                "unclosed counted repetition",
                source.written(err.span()),
                "escape a literal `{` as `\\{`",
            );
        }
        ErrorKind::EscapeUnexpectedEof => "trailing backslash at end of expression",
        ErrorKind::FlagDanglingNegation
        | ErrorKind::FlagDuplicate { .. }
        | ErrorKind::FlagRepeatedNegation { .. }
        | ErrorKind::FlagUnexpectedEof
        | ErrorKind::FlagUnrecognized
        | ErrorKind::UnsupportedLookAround => "invalid or unsupported Perl syntax",
        ErrorKind::GroupNameDuplicate { .. } => "duplicate capture group name",
        ErrorKind::GroupNameEmpty | ErrorKind::GroupNameInvalid | ErrorKind::GroupNameUnexpectedEof => {
            "invalid named capture"
        }
        ErrorKind::GroupUnclosed => "missing closing )",
        ErrorKind::GroupUnopened => "unexpected )",
        ErrorKind::NestLimitExceeded(_) => "expression nests too deeply",
        ErrorKind::RepetitionMissing => "missing argument to repetition operator",
        _ => {
            return Re2Error(format!(
                "error parsing regexp: {}: `{}`",
                err.kind(),
                source.written(err.span())
            ))
        }
    };
    go_error(code, source.written(err.span()))
}

struct Checker<'p> {
    source: &'p Source<'p>,
}

impl Checker<'_> {
    fn at(&self, code: &str, span: &Span) -> Re2Error {
        go_error(code, self.source.written(span))
    }

    fn at_hint(&self, code: &str, span: &Span, hint: &str) -> Re2Error {
        go_error_hint(code, self.source.written(span), hint)
    }

    fn flags(&self, flags: &Flags) -> Result<(), Re2Error> {
        match flags::unknown_flag(flags) {
            Some(span) => Err(self.at_hint(
                "invalid or unsupported Perl syntax",
                span,
                "Go knows only the flags i, m, s and U",
            )),
            None => Ok(()),
        }
    }

    fn literal(&self, lit: &Literal) -> Result<(), Re2Error> {
        match &lit.kind {
            // Go's parseEscape knows `\x7F` and `\x{10FFFF}`, not `\u` or `\U`.
            LiteralKind::HexFixed(HexLiteralKind::UnicodeShort | HexLiteralKind::UnicodeLong)
            | LiteralKind::HexBrace(HexLiteralKind::UnicodeShort | HexLiteralKind::UnicodeLong) => {
                Err(self.at("invalid escape sequence", &lit.span))
            }
            // Go: "Single non-zero digit is a backreference; not supported".
            LiteralKind::Octal if self.source.written(&lit.span).len() == 2 && lit.c != '\0' => {
                Err(self.at("invalid escape sequence", &lit.span))
            }
            _ => Ok(()),
        }
    }

    fn assertion(&self, assertion: &Assertion) -> Result<(), Re2Error> {
        match assertion.kind {
            AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::StartText
            | AssertionKind::EndText
            | AssertionKind::WordBoundary
            | AssertionKind::NotWordBoundary => Ok(()),
            AssertionKind::WordBoundaryStartAngle | AssertionKind::WordBoundaryEndAngle => Err(self.at_hint(
                "ambiguous escape sequence",
                &assertion.span,
                "Go reads it as a literal character, regex-syntax as a word-boundary assertion; \
                 write the character unescaped",
            )),
            AssertionKind::WordBoundaryStart
            | AssertionKind::WordBoundaryEnd
            | AssertionKind::WordBoundaryStartHalf
            | AssertionKind::WordBoundaryEndHalf => Err(self.at_hint(
                "unsupported word boundary assertion",
                &assertion.span,
                "Go has only \\b and \\B, and would read the braces as literal text",
            )),
        }
    }

    /// Go's `unicodeTable`: `Any`, a key of `unicode.Categories` or of `unicode.Scripts`, with an
    /// optional leading `^` for negation inside braces. No binary properties, no `name=value`.
    fn unicode(&self, class: &ClassUnicode) -> Result<(), Re2Error> {
        let known = match &class.kind {
            ClassUnicodeKind::OneLetter(c) => {
                GO_CATEGORIES.iter().any(|cat| cat.len() == 1 && cat.starts_with(*c))
            }
            ClassUnicodeKind::Named(name) => {
                let name = name.strip_prefix('^').unwrap_or(name);
                name == "Any"
                    || GO_CATEGORIES.contains(&name)
                    || GO_SCRIPTS.split(' ').any(|script| script == name)
            }
            ClassUnicodeKind::NamedValue { .. } => false,
        };
        if known {
            Ok(())
        } else {
            Err(self.at("invalid character class range", &class.span))
        }
    }

    fn repetition(&self, rep: &Repetition) -> Result<(), Re2Error> {
        // Go: "In Perl it is not allowed to stack repetition operators: a** is a syntax error".
        if let Ast::Repetition(inner) = &*rep.ast {
            let span = Span::new(inner.op.span.start, rep.op.span.end);
            return Err(self.at("invalid nested repetition operator", &span));
        }
        let RepetitionKind::Range(range) = &rep.op.kind else {
            return Ok(());
        };
        let (min, max) = bounds(range);
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(self.at("invalid repeat count", &rep.op.span));
        }
        // Go's parser: `if op == OpRepeat && (min >= 2 || max >= 2) && !repeatIsValid(re, 1000)`.
        if (min >= 2 || max.is_some_and(|m| m >= 2)) && !repetition_is_valid(rep, MAX_REPEAT) {
            return Err(self.at("invalid repeat count", &rep.op.span));
        }
        Ok(())
    }
}

impl ast::Visitor for Checker<'_> {
    type Output = ();
    type Err = Re2Error;

    fn finish(self) -> Result<(), Re2Error> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), Re2Error> {
        match ast {
            Ast::Flags(set) => self.flags(&set.flags),
            Ast::Literal(lit) => self.literal(lit),
            Ast::Assertion(assertion) => self.assertion(assertion),
            Ast::ClassUnicode(class) => self.unicode(class),
            Ast::Repetition(rep) => self.repetition(rep),
            Ast::Group(group) => match &group.kind {
                GroupKind::CaptureIndex(_) => Ok(()),
                GroupKind::NonCapturing(flags) => self.flags(flags),
                // Go's isValidCaptureName: non-empty, only `_` and ASCII letters and digits.
                // `(?<name>x)` only from Go 1.22; cloudflared releases built with older Go
                // refuse it, and `(?P<name>x)` means the same everywhere.
                GroupKind::CaptureName { starts_with_p: false, .. } => Err(self.at_hint(
                    "invalid or unsupported Perl syntax",
                    &group.span,
                    "cloudflared releases built with Go before 1.22 refuse `(?<name>…)`; write `(?P<name>…)`",
                )),
                GroupKind::CaptureName { name, .. } => {
                    if !name.name.is_empty()
                        && name.name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
                    {
                        Ok(())
                    } else {
                        Err(self.at("invalid named capture", &name.span))
                    }
                }
            },
            Ast::Empty(_)
            | Ast::Dot(_)
            | Ast::ClassPerl(_)
            | Ast::ClassBracketed(_)
            | Ast::Alternation(_)
            | Ast::Concat(_) => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), Re2Error> {
        match item {
            ClassSetItem::Literal(lit) => self.literal(lit),
            ClassSetItem::Range(range) => self.literal(&range.start).and_then(|()| self.literal(&range.end)),
            ClassSetItem::Unicode(class) => self.unicode(class),
            // Inside a class Go reads `[` as a literal (only `[:name:]` is special), so
            // `[a[b]]` means "one of a [ b, then ]" in Go and "a or b" in regex-syntax.
            ClassSetItem::Bracketed(nested) => Err(self.at_hint(
                "nested character class",
                &nested.span,
                "Go reads `[` inside a class as a literal; escape it as `\\[`",
            )),
            ClassSetItem::Empty(_)
            | ClassSetItem::Ascii(_)
            | ClassSetItem::Perl(_)
            | ClassSetItem::Union(_) => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, op: &ClassSetBinaryOp) -> Result<(), Re2Error> {
        // Go has no class set operations: `&&`, `--`, `~~` are literal characters there.
        let operator = match op.kind {
            ClassSetBinaryOpKind::Intersection => "&&",
            ClassSetBinaryOpKind::Difference => "--",
            ClassSetBinaryOpKind::SymmetricDifference => "~~",
        };
        Err(self.at_hint(
            &format!("character class set operation `{operator}`"),
            &op.span,
            "Go reads these as literal characters; escape them",
        ))
    }
}

/// `(min, max)` of a counted repetition; `max` is `None` for `{n,}`.
fn bounds(range: &RepetitionRange) -> (u32, Option<u32>) {
    match *range {
        RepetitionRange::Exactly(n) => (n, Some(n)),
        RepetitionRange::AtLeast(n) => (n, None),
        RepetitionRange::Bounded(min, max) => (min, Some(max)),
    }
}

/// Go's `repeatIsValid`: walking down from a counted repetition, each nested counted
/// repetition divides the budget of 1000 by its bound (its max, or its min when unbounded);
/// a max of 0 ends the walk, a bound above the remaining budget is "invalid repeat count".
fn repetition_is_valid(rep: &Repetition, budget: u32) -> bool {
    let mut budget = budget;
    if let RepetitionKind::Range(range) = &rep.op.kind {
        let (min, max) = bounds(range);
        // Only an explicit `{0}` (or `{0,0}`) ends the walk; `{0,}` goes on with its budget.
        if max == Some(0) {
            return true;
        }
        let m = max.unwrap_or(min);
        if m > budget {
            return false;
        }
        // A bound of 0 (`{0,}`) leaves the budget as it is.
        budget = budget.checked_div(m).unwrap_or(budget);
    }
    repeat_is_valid(&rep.ast, budget)
}

fn repeat_is_valid(ast: &Ast, budget: u32) -> bool {
    match ast {
        Ast::Repetition(rep) => repetition_is_valid(rep, budget),
        Ast::Group(group) => repeat_is_valid(&group.ast, budget),
        Ast::Alternation(alt) => alt.asts.iter().all(|sub| repeat_is_valid(sub, budget)),
        Ast::Concat(concat) => concat.asts.iter().all(|sub| repeat_is_valid(sub, budget)),
        _ => true,
    }
}

/// Go's `calcSize`, an upper estimate of the compiled program's instruction count, which Go
/// refuses past `maxSize` ("expression too large").
fn program_size(ast: &Ast) -> u64 {
    let size = match ast {
        Ast::Flags(_) => return 0,
        Ast::Empty(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::Literal(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => 1,
        Ast::Group(group) => match group.kind {
            GroupKind::NonCapturing(_) => program_size(&group.ast),
            GroupKind::CaptureIndex(_) | GroupKind::CaptureName { .. } => 2 + program_size(&group.ast),
        },
        Ast::Concat(concat) => concat.asts.iter().map(program_size).fold(0, u64::saturating_add),
        Ast::Alternation(alt) => {
            let subs = alt.asts.iter().map(program_size).fold(0, u64::saturating_add);
            subs.saturating_add(alt.asts.len().saturating_sub(1) as u64)
        }
        Ast::Repetition(rep) => {
            let sub = program_size(&rep.ast);
            match &rep.op.kind {
                RepetitionKind::ZeroOrMore => 2 + sub,
                RepetitionKind::ZeroOrOne | RepetitionKind::OneOrMore => 1 + sub,
                RepetitionKind::Range(range) => match bounds(range) {
                    (0, None) => 2 + sub,
                    (min, None) => u64::from(min).saturating_mul(sub).saturating_add(1),
                    (min, Some(max)) => {
                        u64::from(max).saturating_mul(sub).saturating_add(u64::from(max.saturating_sub(min)))
                    }
                },
            }
        }
    };
    size.max(1)
}

#[path = "re2_unicode.rs"]
mod unicode;
use unicode::{GO_CATEGORIES, GO_SCRIPTS};

#[path = "re2_flags.rs"]
mod flags;
use flags::Source;

#[cfg(test)]
#[path = "re2_tests.rs"]
mod tests;

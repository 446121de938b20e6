//! Alpine package versions as apk-tools orders them: `digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}`.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme, compare_digit_runs, split_digits};

/// apk-tools ordering (`apk version -t`).
#[derive(Debug, Clone, Copy)]
pub struct Apk;

/// Token kinds in the order apk-tools numbers them; the order matters for comparisons of
/// versions of different lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    RevisionNumber,
    End,
    Invalid,
}

/// Suffix ranks: the ones before `None` are pre-releases.
const SUFFIXES: [&str; 10] = [
    "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
];
const SUFFIX_NONE: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    value: &'a str,
    suffix: usize,
}

struct Tokens<'a> {
    rest: &'a str,
    current: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        let (digits, rest) = split_digits(version);
        let kind = if digits.is_empty() {
            Kind::Invalid
        } else {
            Kind::InitialDigit
        };
        Tokens {
            rest,
            current: Token {
                kind,
                value: digits,
                suffix: 0,
            },
        }
    }

    fn invalid(&mut self) {
        self.current.kind = Kind::Invalid;
    }

    fn advance(&mut self) {
        let previous = self.current.kind;
        let Some(first) = self.rest.bytes().next() else {
            self.current.kind = Kind::End;
            return;
        };
        match first {
            b'a'..=b'z' => {
                if previous > Kind::Digit {
                    return self.invalid();
                }
                self.current = Token {
                    kind: Kind::Letter,
                    value: &self.rest[..1],
                    suffix: 0,
                };
                self.rest = &self.rest[1..];
            }
            b'.' | b'0'..=b'9' => {
                if first == b'.' {
                    if previous > Kind::Digit {
                        return self.invalid();
                    }
                    self.rest = &self.rest[1..];
                }
                let kind = match previous {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNumber,
                    _ => return self.invalid(),
                };
                let (digits, rest) = split_digits(self.rest);
                if digits.is_empty() {
                    return self.invalid();
                }
                self.current = Token {
                    kind,
                    value: digits,
                    suffix: 0,
                };
                self.rest = rest;
            }
            b'_' => {
                if previous > Kind::SuffixNumber {
                    return self.invalid();
                }
                let after = &self.rest[1..];
                let end = after
                    .bytes()
                    .position(|b| !b.is_ascii_lowercase())
                    .unwrap_or(after.len());
                let name = &after[..end];
                let Some(rank) = SUFFIXES.iter().position(|s| !s.is_empty() && *s == name) else {
                    return self.invalid();
                };
                self.current = Token {
                    kind: Kind::Suffix,
                    value: name,
                    suffix: rank,
                };
                self.rest = &after[end..];
            }
            b'~' => {
                if previous >= Kind::CommitHash {
                    return self.invalid();
                }
                let after = &self.rest[1..];
                let end = after
                    .bytes()
                    .position(|b| !b.is_ascii_hexdigit())
                    .unwrap_or(after.len());
                if end == 0 {
                    return self.invalid();
                }
                self.current = Token {
                    kind: Kind::CommitHash,
                    value: &after[..end],
                    suffix: 0,
                };
                self.rest = &after[end..];
            }
            b'-' => {
                if previous >= Kind::RevisionNumber {
                    return self.invalid();
                }
                let Some(after) = self.rest.strip_prefix("-r") else {
                    return self.invalid();
                };
                let (digits, rest) = split_digits(after);
                if digits.is_empty() {
                    return self.invalid();
                }
                self.current = Token {
                    kind: Kind::RevisionNumber,
                    value: digits,
                    suffix: 0,
                };
                self.rest = rest;
            }
            _ => self.invalid(),
        }
    }
}

fn compare_tokens(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        // Digits after the first with a leading zero compare as strings (Gentoo rules).
        Kind::Digit if a.value.starts_with('0') || b.value.starts_with('0') => a.value.cmp(b.value),
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNumber | Kind::RevisionNumber => {
            compare_digit_runs(a.value, b.value)
        }
        Kind::Letter => a.value.cmp(b.value),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.value.cmp(b.value),
    }
}

/// True when apk-tools accepts `version`.
pub fn is_valid(version: &str) -> bool {
    let mut tokens = Tokens::new(version);
    while tokens.current.kind < Kind::End {
        tokens.advance();
    }
    tokens.current.kind == Kind::End
}

/// The apk-tools comparison; invalid tails compare as apk-tools compares them.
fn compare_raw(a: &str, b: &str) -> Ordering {
    let mut ta = Tokens::new(a);
    let mut tb = Tokens::new(b);
    while ta.current.kind == tb.current.kind && ta.current.kind < Kind::End {
        let ordering = compare_tokens(&ta.current, &tb.current);
        if ordering != Ordering::Equal {
            return ordering;
        }
        ta.advance();
        tb.advance();
    }
    let (ka, kb) = (ta.current.kind, tb.current.kind);
    if ka == kb {
        return Ordering::Equal;
    }
    // The longer version is newer, unless what follows is a pre-release suffix.
    if ka == Kind::Suffix && ta.current.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if kb == Kind::Suffix && tb.current.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    kb.cmp(&ka)
}

impl VersionScheme for Apk {
    fn id(&self) -> &'static str {
        "apk"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        // apk-tools orders even invalid versions (string sort of the invalid tail); the matcher
        // still wants to know, so only an empty or non-numeric start is refused.
        for version in [a, b] {
            if !version.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(VersionError::new(
                    "apk",
                    version,
                    "does not start with a digit",
                ));
            }
        }
        Ok(compare_raw(a, b))
    }

    fn validate(&self, version: &str) -> Result<(), VersionError> {
        if is_valid(version) {
            Ok(())
        } else {
            Err(VersionError::new(
                "apk",
                version,
                "not an apk-tools version",
            ))
        }
    }
}

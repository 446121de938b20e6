//! RPM versions: `rpmvercmp` (with `~` and `^`) applied to `[epoch:]version[-release]`.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme, compare_digit_runs, split_digits};

/// RPM ordering: epoch first, then `rpmvercmp` of version, then of release.
#[derive(Debug, Clone, Copy)]
pub struct Rpm;

/// `rpmvercmp` as rpm's `rpmio/rpmvercmp.c` defines it: alternating alphabetic and numeric
/// segments, separators ignored, numeric beats alphabetic, `~` sorts before anything (even the
/// end of the string), `^` sorts after the end of the string but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut one, mut two) = (a, b);
    loop {
        one = one.trim_start_matches(|c: char| !c.is_ascii_alphanumeric() && c != '~' && c != '^');
        two = two.trim_start_matches(|c: char| !c.is_ascii_alphanumeric() && c != '~' && c != '^');

        // Tilde: sorts before everything else.
        match (one.starts_with('~'), two.starts_with('~')) {
            (true, true) => {
                one = &one[1..];
                two = &two[1..];
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // Caret: like the end of the string, except that the end of the other string sorts first.
        match (one.starts_with('^'), two.starts_with('^')) {
            (true, true) => {
                one = &one[1..];
                two = &two[1..];
                continue;
            }
            (true, false) => {
                return if two.is_empty() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
            }
            (false, true) => {
                return if one.is_empty() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            (false, false) => {}
        }
        if one.is_empty() || two.is_empty() {
            break;
        }
        let numeric = one.as_bytes()[0].is_ascii_digit();
        let (segment_one, rest_one, segment_two, rest_two) = if numeric {
            let (s1, r1) = split_digits(one);
            let (s2, r2) = split_digits(two);
            (s1, r1, s2, r2)
        } else {
            let (s1, r1) = split_alpha(one);
            let (s2, r2) = split_alpha(two);
            (s1, r1, s2, r2)
        };
        // Segments of different kinds: numeric is newer.
        if segment_two.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ordering = if numeric {
            compare_digit_runs(segment_one, segment_two)
        } else {
            segment_one.cmp(segment_two)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        one = rest_one;
        two = rest_two;
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn split_alpha(text: &str) -> (&str, &str) {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Splits `[epoch:]version[-release]`.
fn split_evr(evr: &str) -> Result<(u64, &str, Option<&str>), VersionError> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) => {
            let epoch = epoch
                .parse::<u64>()
                .map_err(|_| VersionError::new("rpm", evr, "epoch is not a number"))?;
            (epoch, rest)
        }
        None => (0, evr),
    };
    if rest.is_empty() {
        return Err(VersionError::new("rpm", evr, "empty version"));
    }
    Ok(match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    })
}

impl VersionScheme for Rpm {
    fn id(&self) -> &'static str {
        "rpm"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        let (epoch_a, version_a, release_a) = split_evr(a)?;
        let (epoch_b, version_b, release_b) = split_evr(b)?;
        Ok(epoch_a
            .cmp(&epoch_b)
            .then_with(|| rpmvercmp(version_a, version_b))
            .then_with(|| match (release_a, release_b) {
                // A missing release matches any release, as rpm does for dependency ranges.
                (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
                _ => Ordering::Equal,
            }))
    }
}

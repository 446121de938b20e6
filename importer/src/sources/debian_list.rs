//! The Debian security tracker's advisory lists (`data/DSA/list`, `data/DLA/list`).
//!
//! Each advisory becomes one record per CVE it fixes (id = the CVE, the DSA/DLA id in `related`),
//! because a DSA bundles unrelated CVEs and must not merge them into one vulnerability; an
//! advisory without CVEs becomes a record under its own id.

use super::Parsed;
use crate::model::{Advisory, Affected, DistroRelease, DistroStatus, Reference, is_cve};

struct Entry {
    line: usize,
    id: String,
    date: String,
    cves: Vec<String>,
    fixes: Vec<(String, String, DistroStatus, Option<String>)>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn parse_header(line: &str) -> Result<(String, String), String> {
    let rest = line
        .strip_prefix('[')
        .ok_or("header does not start with [")?;
    let (date, rest) = rest
        .split_once("] ")
        .ok_or("header date not closed with ]")?;
    let mut date_parts = date.split(' ');
    let (day, month, year) = (date_parts.next(), date_parts.next(), date_parts.next());
    let (Some(day), Some(month), Some(year)) = (day, month, year) else {
        return Err(format!("bad date {date:?}"));
    };
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .ok_or_else(|| format!("bad month in {date:?}"))?
        + 1;
    let day: u8 = day.parse().map_err(|_| format!("bad day in {date:?}"))?;
    let year: u16 = year.parse().map_err(|_| format!("bad year in {date:?}"))?;
    let id = rest
        .split_whitespace()
        .next()
        .ok_or("header without advisory id")?;
    if !(id.starts_with("DSA-") || id.starts_with("DLA-") || id.starts_with("DTSA-")) {
        return Err(format!("advisory id {id:?} is not DSA-/DLA-/DTSA-"));
    }
    Ok((id.to_string(), format!("{year:04}-{month:02}-{day:02}")))
}

fn parse_fix(line: &str) -> Result<(String, String, DistroStatus, Option<String>), String> {
    let rest = line
        .strip_prefix('[')
        .ok_or("release line does not start with [")?;
    let (release, rest) = rest.split_once(']').ok_or("release not closed with ]")?;
    let rest = rest
        .trim_start()
        .strip_prefix('-')
        .ok_or("release line without `-`")?
        .trim();
    let mut words = rest.split_whitespace();
    let package = words.next().ok_or("release line without package")?;
    let version = words.next().ok_or("release line without version")?;
    let (status, fixed) = match version {
        "<not-affected>" => (DistroStatus::NotAffected, None),
        "<unfixed>" => (DistroStatus::Unfixed, None),
        "<end-of-life>" => (DistroStatus::EndOfLife, None),
        v if v.starts_with('<') => return Err(format!("unknown status {v:?}")),
        v => (DistroStatus::Fixed, Some(v.to_string())),
    };
    Ok((
        release.trim().to_string(),
        package.to_string(),
        status,
        fixed,
    ))
}

/// Parses a whole list file; `kind` is `debian-dsa` or `debian-dla` (for provenance).
pub fn parse(kind: &str, origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let text = String::from_utf8_lossy(bytes);
    let mut entries: Vec<Entry> = Vec::new();
    let mut broken = false;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('[') {
            match parse_header(line) {
                Ok((id, date)) => {
                    entries.push(Entry {
                        line: number,
                        id,
                        date,
                        cves: Vec::new(),
                        fixes: Vec::new(),
                    });
                    broken = false;
                }
                Err(reason) => {
                    parsed.error(&format!("{origin}:{number}"), None, reason);
                    broken = true;
                }
            }
            continue;
        }
        if broken {
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            parsed.error(
                &format!("{origin}:{number}"),
                None,
                "line before the first advisory header",
            );
            continue;
        };
        let body = line.trim();
        if let Some(list) = body.strip_prefix('{') {
            let list = list.trim_end_matches('}');
            entry
                .cves
                .extend(list.split_whitespace().map(str::to_string));
        } else if body.starts_with('[') {
            match parse_fix(body) {
                Ok(fix) => entry.fixes.push(fix),
                Err(reason) => {
                    parsed.error(&format!("{origin}:{number}"), Some(&entry.id), reason);
                    entry.line = 0;
                }
            }
        } else if body.starts_with("NOTE:") {
            continue;
        } else {
            parsed.error(
                &format!("{origin}:{number}"),
                Some(&entry.id),
                format!("unrecognised line {body:?}"),
            );
            entry.line = 0;
        }
    }
    for entry in entries {
        // A record with a bad line is dropped whole rather than loaded half.
        if entry.line == 0 {
            continue;
        }
        let source = format!("{kind}:{}", entry.id);
        let mut affected: Vec<Affected> = Vec::new();
        for (release, package, status, fixed_version) in &entry.fixes {
            let position = match affected.iter().position(|a| &a.package == package) {
                Some(position) => position,
                None => {
                    affected.push(Affected {
                        ecosystem: "Debian".into(),
                        package: package.clone(),
                        purl: Some(format!("pkg:deb/debian/{package}?arch=source")),
                        ranges: Vec::new(),
                        requirements: Vec::new(),
                        versions: Vec::new(),
                        fixed: Vec::new(),
                        distro: Vec::new(),
                        source: source.clone(),
                    });
                    affected.len() - 1
                }
            };
            affected[position].distro.push(DistroRelease {
                release: release.clone(),
                status: *status,
                fixed_version: fixed_version.clone(),
            });
            if let Some(version) = fixed_version {
                affected[position].fixed.push(version.clone());
            }
        }
        let cves: Vec<&String> = entry.cves.iter().filter(|c| is_cve(c)).collect();
        let reference = Reference {
            kind: "ADVISORY".into(),
            url: format!("https://security-tracker.debian.org/tracker/{}", entry.id),
            source: source.clone(),
        };
        let mut make = |id: &str, related: Option<&str>| {
            let mut advisory = Advisory::new(id, &source);
            if let Some(related) = related {
                advisory.related.insert(related.to_string());
            } else {
                advisory.published = Some(entry.date.clone());
            }
            advisory.affected = affected.clone();
            advisory.references.push(reference.clone());
            parsed.advisories.push(advisory);
        };
        if cves.is_empty() {
            make(&entry.id, None);
        } else {
            for cve in cves {
                make(cve, Some(&entry.id));
            }
        }
    }
    parsed.keep_valid(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_per_cve_and_keeps_statuses() {
        let text = "[29 Mar 2023] DSA-5380-1 xorg-server - security update\n\t{CVE-2023-1393 CVE-2023-0001}\n\t[bullseye] - xorg-server 2:1.20.11-1+deb11u6\n\t[buster] - xorg-server <not-affected> (Vulnerable code not present)\n[17 Mar 2023] DSA-5356-2 sox - regression update\n\t[bullseye] - sox 14.4.2+git20190427-2+deb11u2\n";
        let parsed = parse("debian-dsa", "list", text.as_bytes());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let ids: Vec<&str> = parsed.advisories.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2023-1393", "CVE-2023-0001", "DSA-5356-2"]);
        let distro = &parsed.advisories[0].affected[0].distro;
        assert_eq!(distro.len(), 2);
        assert!(parsed.advisories[0].related.contains("DSA-5380-1"));
    }

    #[test]
    fn a_bad_line_drops_only_its_advisory() {
        let text = "[29 Mar 2023] DSA-1-1 a - x\n\t{CVE-2023-1111}\n\t[bullseye] - a <weird>\n[29 Mar 2023] DSA-2-1 b - x\n\t{CVE-2023-2222}\n\t[bullseye] - b 1.0\n";
        let parsed = parse("debian-dsa", "list", text.as_bytes());
        assert_eq!(parsed.advisories.len(), 1);
        assert_eq!(parsed.advisories[0].id, "CVE-2023-2222");
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].origin, "list:3");
    }
}

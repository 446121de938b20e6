//! Matching components with advisories.
//!
//! Distro packages match distro advisories by *source* package and release (fixed-in per
//! release, not-affected, unfixed) and never upstream ranges; language packages match OSV event
//! ranges (`ECOSYSTEM`, `SEMVER`), explicit version lists and native requirements (npm, Cargo).

use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stella_importer::model::{
    Advisory, Affected, DistroStatus, RangeEvent, RangeKind, RequirementMeaning, RequirementSyntax,
};

use crate::component::{Component, DistroFamily, DistroRelease, normalize_pypi_name};
use crate::source::{AdvisorySource, SourceError};
use crate::version::{self, VersionError, VersionScheme};

/// One advisory that affects one component, with why.
#[derive(Debug, Clone)]
pub struct Match {
    /// Index of the component in the input slice.
    pub component: usize,
    pub advisory: Arc<Advisory>,
    /// Whether `advisory` was merged here from several records sharing its id (a new record,
    /// not one the source holds).
    pub merged: bool,
    /// The version that fixes it for this component, when one is known.
    pub fixed_version: Option<String>,
    /// A sentence saying which affected entry matched and how.
    pub reason: String,
}

/// Something the matcher could not decide (a version it cannot read, an unknown ecosystem).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unknown {
    pub purl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    pub reason: String,
}

/// The matcher's answer for a list of components.
#[derive(Debug, Default)]
pub struct Matches {
    pub matches: Vec<Match>,
    pub unknowns: Vec<Unknown>,
}

/// Outcome of checking one affected entry.
enum Verdict {
    Affected {
        fixed: Option<String>,
        reason: String,
    },
    NotAffected,
}

/// Below this many components per thread, matching stays on the calling thread.
const COMPONENTS_PER_THREAD: usize = 512;

/// How many threads to spread `items` over: the core count, at most one per `per_thread` items.
pub(crate) fn threads_for(items: usize, per_thread: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(items.div_ceil(per_thread.max(1))).max(1)
}

/// Runs `work` over consecutive chunks of `items` (index offset, chunk) on up to `threads`
/// threads and returns the results in chunk order, so the outcome does not depend on the thread
/// count.
pub(crate) fn in_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return vec![work(0, items)];
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .enumerate()
            .map(|(n, chunk)| {
                let work = &work;
                scope.spawn(move || work(n * size, chunk))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Like [`in_chunks`], handing each thread its chunk by value.
pub(crate) fn in_owned_chunks<T: Send, R: Send>(
    mut items: Vec<T>,
    threads: usize,
    work: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return vec![work(items)];
    }
    let size = items.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    while items.len() > size {
        let rest = items.split_off(size);
        chunks.push(items);
        items = rest;
    }
    chunks.push(items);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let work = &work;
                scope.spawn(move || work(chunk))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Matches every component against the advisories `source` returns for it. Components are
/// matched in chunks on up to the core count of threads; matches come out ordered by component
/// index, then advisory id, whatever the thread count.
pub fn match_components(
    components: &[Component],
    source: &dyn AdvisorySource,
) -> Result<Matches, SourceError> {
    let order: Vec<usize> = (0..components.len()).collect();
    let threads = threads_for(components.len(), COMPONENTS_PER_THREAD);
    match_in_order(components, &order, source, threads)
}

/// Matches `components[order[0]]`, `components[order[1]]`, ... on up to `threads` threads;
/// matches come out in that order (each component's by advisory id) and name the component by
/// its index in `components`.
pub(crate) fn match_in_order(
    components: &[Component],
    order: &[usize],
    source: &dyn AdvisorySource,
    threads: usize,
) -> Result<Matches, SourceError> {
    let parts = in_chunks(order, threads, |_, chunk| {
        let mut part = Matches::default();
        for &index in chunk {
            match_one(index, &components[index], source, &mut part)?;
        }
        Ok::<_, SourceError>(part)
    });
    let mut out = Matches::default();
    for part in parts {
        let part = part?;
        out.matches.extend(part.matches);
        out.unknowns.extend(part.unknowns);
    }
    out.unknowns.sort();
    out.unknowns.dedup();
    Ok(out)
}

fn lookup_keys(component: &Component, distro: Option<&DistroRelease>) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    if let Some(release) = distro {
        let package = component.advisory_package().to_owned();
        let base = release.family.ecosystem();
        keys.push((base.to_owned(), package.clone()));
        match release.family {
            DistroFamily::Debian => {
                let major = release
                    .version
                    .split('.')
                    .next()
                    .unwrap_or(&release.version);
                keys.push((format!("Debian:{major}"), package));
            }
            DistroFamily::Alpine => {
                let mm: Vec<&str> = release.version.split('.').take(2).collect();
                keys.push((format!("Alpine:v{}", mm.join(".")), package));
            }
            DistroFamily::Ubuntu => {
                keys.push((format!("Ubuntu:{}", release.version), package.clone()));
                keys.push((format!("Ubuntu:{}:LTS", release.version), package));
            }
        }
    } else {
        keys.push((component.ecosystem.clone(), component.name.clone()));
        if component.ecosystem == "PyPI" {
            let normalized = normalize_pypi_name(&component.name);
            if normalized != component.name {
                keys.push((component.ecosystem.clone(), normalized));
            }
        }
    }
    keys
}

fn match_one(
    index: usize,
    component: &Component,
    source: &dyn AdvisorySource,
    out: &mut Matches,
) -> Result<(), SourceError> {
    let distro = component.distro_release();
    if component.distro.is_some() && distro.is_none() {
        out.unknowns.push(Unknown {
            purl: component.purl.clone(),
            advisory: None,
            reason: format!(
                "distro release {:?} is not one the matcher knows (debian, ubuntu, alpine)",
                component.distro.as_deref().unwrap_or_default()
            ),
        });
        return Ok(());
    }
    // The same id can come from several records (a DSA and a DLA, two channels): every affected
    // entry of every record counts, and the records are merged only for a match.
    // dpkg versions are parsed once per component, not once per advisory entry.
    let installed_dpkg = match distro.as_ref().map(|d| d.family) {
        Some(DistroFamily::Debian | DistroFamily::Ubuntu) => {
            version::dpkg::parse(component.advisory_version()).ok()
        }
        _ => None,
    };
    // Each list comes ordered by id from the source; a single list (the usual case) is used as
    // it is, several are joined in key order, ordered by id (stably) and freed of duplicates.
    let mut lists: Vec<Arc<[Arc<Advisory>]>> = Vec::new();
    let keys = lookup_keys(component, distro.as_ref());
    let mut keys = keys.iter();
    if let Some(release) = &distro {
        // The family-wide list holds every release's advisories; only those with an entry for
        // this release can decide anything (check_distro ignores the rest), so ask for those.
        keys.next();
        let family = release.family.ecosystem();
        for name in release.names() {
            let list = source.advisories_for_release(family, component.advisory_package(), name)?;
            if !list.is_empty() {
                lists.push(list);
            }
        }
    }
    for (ecosystem, package) in keys {
        let list = source.advisories_for_package(ecosystem, package)?;
        if !list.is_empty() {
            lists.push(list);
        }
    }
    let joined: Vec<Arc<Advisory>>;
    let found: &[Arc<Advisory>] = match lists.as_slice() {
        [] => return Ok(()),
        [only] => only,
        several => {
            let mut all: Vec<Arc<Advisory>> =
                several.iter().flat_map(|l| l.iter().cloned()).collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            let mut seen = std::collections::HashSet::new();
            all.retain(|a| seen.insert(Arc::as_ptr(a)));
            joined = all;
            &joined
        }
    };
    let mut start = 0;
    while start < found.len() {
        let id = found[start].id.as_str();
        let end = found[start..]
            .iter()
            .position(|a| a.id != id)
            .map_or(found.len(), |offset| start + offset);
        let records = &found[start..end];
        start = end;
        let mut best: Option<(Option<String>, String)> = None;
        // Once an entry says "affected, fixed in X" nothing later can replace it (only an
        // affected verdict without a fix gives way), so the remaining entries are not read.
        'records: for advisory in records {
            if advisory.withdrawn.is_some() {
                continue;
            }
            for affected in &advisory.affected {
                if best.as_ref().is_some_and(|b| b.0.is_some()) {
                    break 'records;
                }
                let verdict = match &distro {
                    Some(release) => {
                        check_distro(component, release, affected, installed_dpkg.as_ref())
                    }
                    None => check_language(component, affected),
                };
                match verdict {
                    Ok(Some(Verdict::Affected { fixed, reason })) => {
                        if best.is_none()
                            || (best.as_ref().is_some_and(|b| b.0.is_none()) && fixed.is_some())
                        {
                            best = Some((fixed, reason));
                        }
                    }
                    Ok(Some(Verdict::NotAffected)) | Ok(None) => {}
                    Err(error) => out.unknowns.push(Unknown {
                        purl: component.purl.clone(),
                        advisory: Some(id.to_owned()),
                        reason: error.to_string(),
                    }),
                }
            }
        }
        if let Some((fixed_version, reason)) = best {
            let Some(advisory) = merge(records) else {
                continue;
            };
            out.matches.push(Match {
                component: index,
                advisory,
                merged: records.len() > 1,
                fixed_version,
                reason,
            });
        }
    }
    Ok(())
}

/// One advisory from the records that share its id (the first record, with the others' affected
/// entries, aliases and sources added).
fn merge(records: &[Arc<Advisory>]) -> Option<Arc<Advisory>> {
    let (first, rest) = records.split_first()?;
    let mut first = Arc::clone(first);
    if rest.is_empty() {
        return Some(first);
    }
    let merged = Arc::make_mut(&mut first);
    for other in rest {
        for affected in &other.affected {
            if !merged.affected.contains(affected) {
                merged.affected.push(affected.clone());
            }
        }
        merged.aliases.extend(other.aliases.iter().cloned());
        merged.sources.extend(other.sources.iter().cloned());
        merged.related.extend(other.related.iter().cloned());
    }
    let id = merged.id.clone();
    merged.aliases.remove(&id);
    Some(first)
}

/// A distro package against one affected entry: only the entry for this release counts.
fn check_distro(
    component: &Component,
    release: &DistroRelease,
    affected: &Affected,
    installed_dpkg: Option<&debversion::Version>,
) -> Result<Option<Verdict>, VersionError> {
    let family = release.family.ecosystem();
    let base = affected.ecosystem.split(':').next().unwrap_or("");
    if base != family || affected.package != component.advisory_package() {
        return Ok(None);
    }
    let installed = component.advisory_version();
    let Some(scheme) = version::scheme_for_ecosystem(family) else {
        return Ok(None);
    };
    if !affected.distro.is_empty() {
        let Some(entry) = affected
            .distro
            .iter()
            .find(|d| release.is_named(&d.release))
        else {
            return Ok(None);
        };
        return Ok(Some(match entry.status {
            DistroStatus::NotAffected => Verdict::NotAffected,
            DistroStatus::Unfixed => Verdict::Affected {
                fixed: None,
                reason: format!(
                    "{family} {}: source package {} is unfixed",
                    entry.release, affected.package
                ),
            },
            DistroStatus::EndOfLife => Verdict::Affected {
                fixed: None,
                reason: format!(
                    "{family} {}: source package {} is end-of-life, no fix will be published",
                    entry.release, affected.package
                ),
            },
            DistroStatus::Fixed => {
                let Some(fixed) = entry.fixed_version.as_deref() else {
                    return Ok(None);
                };
                let ordering = match installed_dpkg {
                    Some(parsed) if scheme.id() == "dpkg" => {
                        parsed.cmp(&version::dpkg::parse(fixed)?)
                    }
                    _ => scheme.compare(installed, fixed)?,
                };
                if ordering == Ordering::Less {
                    Verdict::Affected {
                        fixed: Some(fixed.to_owned()),
                        reason: format!(
                            "{family} {}: source package {} {installed} is older than the fix {fixed}",
                            entry.release, affected.package
                        ),
                    }
                } else {
                    Verdict::NotAffected
                }
            }
        }));
    }
    // OSV records of a distro ecosystem with a release suffix (`Debian:12`, `Ubuntu:24.04:LTS`)
    // carry ranges for that release only; records without a release are not used for distros.
    if !release.matches_ecosystem(&affected.ecosystem) {
        return Ok(None);
    }
    check_ranges_and_versions(installed, scheme, affected)
}

/// A language package against one affected entry.
fn check_language(
    component: &Component,
    affected: &Affected,
) -> Result<Option<Verdict>, VersionError> {
    if affected.ecosystem != component.ecosystem {
        return Ok(None);
    }
    let same_name = if component.ecosystem == "PyPI" {
        normalize_pypi_name(&affected.package) == normalize_pypi_name(&component.name)
    } else {
        affected.package == component.name
    };
    if !same_name {
        return Ok(None);
    }
    let Some(scheme) = version::scheme_for_ecosystem(&affected.ecosystem) else {
        return Err(VersionError {
            scheme: "none",
            version: component.version.clone(),
            reason: format!("no version scheme for ecosystem {:?}", affected.ecosystem),
        });
    };
    check_ranges_and_versions(&component.version, scheme, affected)
}

fn check_ranges_and_versions(
    installed: &str,
    scheme: &dyn VersionScheme,
    affected: &Affected,
) -> Result<Option<Verdict>, VersionError> {
    // Native requirements: a matching "patched" or "unaffected" requirement wins.
    let mut vulnerable_by_requirement = None;
    for requirement in &affected.requirements {
        let requirement_scheme: &dyn VersionScheme = match requirement.syntax {
            RequirementSyntax::Npm => &version::Npm,
            RequirementSyntax::Cargo => &version::Cargo,
        };
        let satisfied = requirement_scheme.satisfies(installed, &requirement.expression)?;
        match requirement.meaning {
            RequirementMeaning::Patched | RequirementMeaning::Unaffected if satisfied => {
                return Ok(Some(Verdict::NotAffected));
            }
            RequirementMeaning::Vulnerable if satisfied => {
                vulnerable_by_requirement = Some(requirement.expression.clone());
            }
            _ => {}
        }
    }
    // Only an affected verdict needs the fixed version, so it is looked up lazily.
    let fixed = || smallest_fix_above(installed, scheme, &affected.fixed);
    if let Some(expression) = vulnerable_by_requirement {
        return Ok(Some(Verdict::Affected {
            reason: format!(
                "{} {installed} satisfies the vulnerable range {expression:?}",
                affected.package
            ),
            fixed: fixed(),
        }));
    }
    if affected.versions.iter().any(|v| v == installed) {
        return Ok(Some(Verdict::Affected {
            reason: format!("{} {installed} is listed as affected", affected.package),
            fixed: fixed(),
        }));
    }
    for range in &affected.ranges {
        let range_scheme: &dyn VersionScheme = match range.kind {
            RangeKind::Ecosystem => scheme,
            RangeKind::Semver if scheme.id() == "go" => scheme,
            RangeKind::Semver => &version::SemVer,
            RangeKind::Git | RangeKind::Cpe => continue,
        };
        if let Some(description) = in_range(installed, range_scheme, &range.events)? {
            return Ok(Some(Verdict::Affected {
                reason: format!(
                    "{} {installed} is in the {} range {description}",
                    affected.package,
                    range_scheme.id()
                ),
                fixed: fixed(),
            }));
        }
    }
    Ok(Some(Verdict::NotAffected))
}

/// The lowest fixed version above `installed`, if any can be read.
fn smallest_fix_above(
    installed: &str,
    scheme: &dyn VersionScheme,
    fixes: &[String],
) -> Option<String> {
    let mut best: Option<&String> = None;
    for fix in fixes {
        if scheme.compare(fix, installed).ok() != Some(Ordering::Greater) {
            continue;
        }
        if best.is_none_or(|b| scheme.compare(fix, b).ok() == Some(Ordering::Less)) {
            best = Some(fix);
        }
    }
    best.cloned()
}

/// OSV range evaluation: events in version order; `introduced` opens, `fixed` and `limit` close
/// at their version, `last_affected` closes after it. Returns a description of the interval.
pub fn in_range(
    installed: &str,
    scheme: &dyn VersionScheme,
    events: &[RangeEvent],
) -> Result<Option<String>, VersionError> {
    // Intervals [introduced, end) — read pairwise as OSV writes them, robust to ordering.
    let mut introductions: Vec<&str> = Vec::new();
    let mut ends: Vec<(&str, bool)> = Vec::new(); // (version, inclusive)
    let mut limits: Vec<&str> = Vec::new();
    for event in events {
        match event {
            RangeEvent::Introduced(v) => introductions.push(v),
            RangeEvent::Fixed(v) => ends.push((v, false)),
            RangeEvent::LastAffected(v) => ends.push((v, true)),
            RangeEvent::Limit(v) => limits.push(v),
        }
    }
    let compare = |a: &str, b: &str| -> Result<Ordering, VersionError> {
        if a == "0" && b == "0" {
            return Ok(Ordering::Equal);
        }
        if a == "0" {
            return Ok(Ordering::Less);
        }
        if b == "0" {
            return Ok(Ordering::Greater);
        }
        scheme.compare(a, b)
    };
    for limit in &limits {
        if *limit != "*" && compare(installed, limit)? != Ordering::Less {
            return Ok(None);
        }
    }
    // The closest introduction at or below the installed version, then the closest end above it.
    let mut opened: Option<&str> = None;
    for intro in &introductions {
        if compare(intro, installed)? != Ordering::Greater
            && match opened {
                None => true,
                Some(current) => compare(intro, current)? == Ordering::Greater,
            }
        {
            opened = Some(intro);
        }
    }
    let Some(opened) = opened else {
        return Ok(None);
    };
    for (end, inclusive) in &ends {
        // An end that lies between the opening introduction and the installed version closes it.
        if compare(end, opened)? == Ordering::Less {
            continue;
        }
        let position = compare(installed, end)?;
        let closed = if *inclusive {
            position == Ordering::Greater
        } else {
            position != Ordering::Less
        };
        if closed {
            return Ok(None);
        }
    }
    let upper: Vec<String> = ends
        .iter()
        .filter(|(end, _)| compare(end, opened).ok() != Some(Ordering::Less))
        .map(|(end, inclusive)| format!("{}{end}", if *inclusive { "<=" } else { "<" }))
        .collect();
    Ok(Some(format!(
        "[>={opened}{}{}]",
        if upper.is_empty() { "" } else { ", " },
        upper.join(", ")
    )))
}

//! Where the decider looks up advisories, VEX, KEV and EPSS: a small trait, implemented by the
//! feed store's `Generation` and by an in-memory source for tests and benchmarks.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use stella_importer::VexClaim;
use stella_importer::model::{Advisory, EpssEntry, KevEntry};

/// A lookup failed in the source (a corrupt feed store, for instance).
#[derive(Debug, thiserror::Error)]
#[error("advisory source: {0}")]
pub struct SourceError(pub String);

/// The lookups the decider needs. `Sync`: the decider matches chunks of components on several
/// threads against one source.
pub trait AdvisorySource: Sync {
    /// Advisories with an affected entry for `package` in `ecosystem` (exact names, as the kit
    /// writes them: the *source* package for distros), ordered by id (records sharing an id in
    /// a fixed order). One shared list, so a source that keeps a per-package index hands it out
    /// without copying or even touching the records.
    fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Arc<[Arc<Advisory>]>, SourceError>;

    /// The advisories of [`AdvisorySource::advisories_for_package`]`(family, package)` that have
    /// a per-release entry naming `release` as advisories write it (`bookworm`, `12`, `v3.20`)
    /// for that package: the only ones that can decide anything for a distro package of that
    /// release. Same order. Sources with a per-release index answer without reading the others.
    fn advisories_for_release(
        &self,
        family: &str,
        package: &str,
        release: &str,
    ) -> Result<Arc<[Arc<Advisory>]>, SourceError> {
        let all = self.advisories_for_package(family, package)?;
        Ok(all
            .iter()
            .filter(|advisory| names_release(advisory, family, package, release))
            .cloned()
            .collect())
    }

    /// VEX claims about one vulnerability id.
    fn vex_claims_for(&self, vulnerability: &str) -> Result<Vec<VexClaim>, SourceError>;

    /// The KEV entry of a CVE.
    fn kev(&self, cve: &str) -> Result<Option<KevEntry>, SourceError>;

    /// The EPSS row of a CVE.
    fn epss(&self, cve: &str) -> Result<Option<EpssEntry>, SourceError>;

    /// Where the decider may keep what it derives from one advisory record alone (severity,
    /// KEV, EPSS, VEX claims) between evaluations. Only sources whose records stay the same
    /// `Arc` for as long as the source lives may offer one (the cache is keyed by address).
    fn facts_cache(&self) -> Option<&FactsCache> {
        None
    }
}

/// Advisory-level facts kept by a source for the decider (see [`AdvisorySource::facts_cache`]).
#[derive(Default)]
pub struct FactsCache {
    facts: RwLock<HashMap<usize, Arc<crate::report::AdvisoryFacts>>>,
}

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsCache").finish_non_exhaustive()
    }
}

impl FactsCache {
    pub(crate) fn get(&self, record: &Arc<Advisory>) -> Option<Arc<crate::report::AdvisoryFacts>> {
        self.facts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(Arc::as_ptr(record) as usize))
            .cloned()
    }

    /// Each entry holds its record, so an address in the map always belongs to a live record.
    pub(crate) fn insert(&self, record: &Arc<Advisory>, facts: Arc<crate::report::AdvisoryFacts>) {
        self.facts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(Arc::as_ptr(record) as usize, facts);
    }

    fn clear(&mut self) {
        self.facts
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(feature = "feeds")]
impl AdvisorySource for stella_feeds::Generation {
    fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Arc<[Arc<Advisory>]>, SourceError> {
        stella_feeds::Generation::shared_advisories_for_package(self, ecosystem, package)
            .map_err(|e| SourceError(e.to_string()))
    }

    fn vex_claims_for(&self, vulnerability: &str) -> Result<Vec<VexClaim>, SourceError> {
        stella_feeds::Generation::vex_claims_for(self, vulnerability)
            .map_err(|e| SourceError(e.to_string()))
    }

    fn kev(&self, cve: &str) -> Result<Option<KevEntry>, SourceError> {
        stella_feeds::Generation::kev(self, cve).map_err(|e| SourceError(e.to_string()))
    }

    fn epss(&self, cve: &str) -> Result<Option<EpssEntry>, SourceError> {
        stella_feeds::Generation::epss(self, cve).map_err(|e| SourceError(e.to_string()))
    }
}

/// Whether `advisory` has an entry for `package` in distro `family` naming `release`.
fn names_release(advisory: &Advisory, family: &str, package: &str, release: &str) -> bool {
    advisory.affected.iter().any(|affected| {
        affected.package == package
            && affected.ecosystem.split(':').next() == Some(family)
            && affected.distro.iter().any(|d| d.release.trim() == release)
    })
}

/// One shared list of advisories.
type AdvisoryList = Arc<[Arc<Advisory>]>;

/// The lists [`MemorySource`] hands out, ordered by id, then insertion.
#[derive(Debug, Default)]
struct PackageIndex {
    /// ecosystem -> package -> advisories.
    by_package: HashMap<String, HashMap<String, AdvisoryList>>,
    /// `family \0 package \0 release` -> advisories with an entry for that release.
    by_release: HashMap<String, AdvisoryList>,
}

/// An advisory source held in memory, indexed like the feed store (ecosystem + package).
#[derive(Debug, Default)]
pub struct MemorySource {
    advisories: Vec<Arc<Advisory>>,
    /// ecosystem -> package -> indices into `advisories` (nested so lookups need no allocation).
    by_package: HashMap<String, HashMap<String, Vec<usize>>>,
    /// The per-package lists handed out, built on first lookup after the last change.
    index: OnceLock<PackageIndex>,
    facts: FactsCache,
    vex: HashMap<String, Vec<VexClaim>>,
    kev: HashMap<String, KevEntry>,
    epss: HashMap<String, EpssEntry>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an advisory under every (ecosystem, package) of its affected entries.
    pub fn add_advisory(&mut self, advisory: Advisory) {
        let index = self.advisories.len();
        let mut keys: Vec<(String, String)> = advisory
            .affected
            .iter()
            .map(|a| (a.ecosystem.clone(), a.package.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        for (ecosystem, package) in keys {
            self.by_package
                .entry(ecosystem)
                .or_default()
                .entry(package)
                .or_default()
                .push(index);
        }
        self.advisories.push(Arc::new(advisory));
        self.changed();
    }

    /// Drops what was derived from the records (the package lists and the decider's facts).
    fn changed(&mut self) {
        self.index = OnceLock::new();
        self.facts.clear();
    }

    fn index(&self) -> &PackageIndex {
        self.index.get_or_init(|| {
            let list_of = |indices: &[usize]| -> Arc<[Arc<Advisory>]> {
                let mut list: Vec<Arc<Advisory>> = indices
                    .iter()
                    .map(|&i| self.advisories[i].clone())
                    .collect();
                // Stable: records sharing an id keep their insertion order.
                list.sort_by(|a, b| a.id.cmp(&b.id));
                Arc::from(list)
            };
            let by_package = self
                .by_package
                .iter()
                .map(|(ecosystem, packages)| {
                    let lists = packages
                        .iter()
                        .map(|(package, indices)| (package.clone(), list_of(indices)))
                        .collect();
                    (ecosystem.clone(), lists)
                })
                .collect();
            let mut releases: HashMap<String, Vec<usize>> = HashMap::new();
            for (index, advisory) in self.advisories.iter().enumerate() {
                let mut keys: Vec<String> = advisory
                    .affected
                    .iter()
                    .flat_map(|affected| {
                        let family = affected.ecosystem.split(':').next().unwrap_or("");
                        affected.distro.iter().map(move |d| {
                            format!("{family}\0{}\0{}", affected.package, d.release.trim())
                        })
                    })
                    .collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    releases.entry(key).or_default().push(index);
                }
            }
            let by_release = releases
                .into_iter()
                .map(|(key, indices)| (key, list_of(&indices)))
                .collect();
            PackageIndex {
                by_package,
                by_release,
            }
        })
    }

    pub fn add_vex_claim(&mut self, claim: VexClaim) {
        self.facts.clear();
        self.vex
            .entry(claim.vulnerability.clone())
            .or_default()
            .push(claim);
    }

    pub fn add_kev(&mut self, entry: KevEntry) {
        self.facts.clear();
        self.kev.insert(entry.cve.clone(), entry);
    }

    pub fn add_epss(&mut self, entry: EpssEntry) {
        self.facts.clear();
        self.epss.insert(entry.cve.clone(), entry);
    }

    /// Number of advisories held.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }
}

impl AdvisorySource for MemorySource {
    fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Arc<[Arc<Advisory>]>, SourceError> {
        Ok(self
            .index()
            .by_package
            .get(ecosystem)
            .and_then(|packages| packages.get(package))
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new())))
    }

    fn advisories_for_release(
        &self,
        family: &str,
        package: &str,
        release: &str,
    ) -> Result<Arc<[Arc<Advisory>]>, SourceError> {
        Ok(self
            .index()
            .by_release
            .get(&format!("{family}\0{package}\0{release}"))
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new())))
    }

    fn vex_claims_for(&self, vulnerability: &str) -> Result<Vec<VexClaim>, SourceError> {
        Ok(self.vex.get(vulnerability).cloned().unwrap_or_default())
    }

    fn kev(&self, cve: &str) -> Result<Option<KevEntry>, SourceError> {
        Ok(self.kev.get(cve).cloned())
    }

    fn epss(&self, cve: &str) -> Result<Option<EpssEntry>, SourceError> {
        Ok(self.epss.get(cve).cloned())
    }

    fn facts_cache(&self) -> Option<&FactsCache> {
        Some(&self.facts)
    }
}

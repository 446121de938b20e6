//! Where the decider looks up advisories, VEX, KEV and EPSS: a small trait, implemented by the
//! feed store's `Generation` and by an in-memory source for tests and benchmarks.

use std::collections::HashMap;
use std::sync::Arc;

use stella_importer::VexClaim;
use stella_importer::model::{Advisory, EpssEntry, KevEntry};

/// A lookup failed in the source (a corrupt feed store, for instance).
#[derive(Debug, thiserror::Error)]
#[error("advisory source: {0}")]
pub struct SourceError(pub String);

/// The lookups the decider needs.
pub trait AdvisorySource {
    /// Advisories with an affected entry for `package` in `ecosystem` (exact names, as the kit
    /// writes them: the *source* package for distros). Shared, so in-memory sources hand out
    /// their records without copying them.
    fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Vec<Arc<Advisory>>, SourceError>;

    /// VEX claims about one vulnerability id.
    fn vex_claims_for(&self, vulnerability: &str) -> Result<Vec<VexClaim>, SourceError>;

    /// The KEV entry of a CVE.
    fn kev(&self, cve: &str) -> Result<Option<KevEntry>, SourceError>;

    /// The EPSS row of a CVE.
    fn epss(&self, cve: &str) -> Result<Option<EpssEntry>, SourceError>;
}

#[cfg(feature = "feeds")]
impl AdvisorySource for stella_feeds::Generation {
    fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Vec<Arc<Advisory>>, SourceError> {
        let found = stella_feeds::Generation::advisories_for_package(self, ecosystem, package)
            .map_err(|e| SourceError(e.to_string()))?;
        Ok(found
            .into_iter()
            .map(|(_, advisory)| Arc::new(advisory))
            .collect())
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

/// An advisory source held in memory, indexed like the feed store (ecosystem + package).
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    advisories: Vec<Arc<Advisory>>,
    /// ecosystem -> package -> indices into `advisories` (nested so lookups need no allocation).
    by_package: HashMap<String, HashMap<String, Vec<usize>>>,
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
    }

    pub fn add_vex_claim(&mut self, claim: VexClaim) {
        self.vex
            .entry(claim.vulnerability.clone())
            .or_default()
            .push(claim);
    }

    pub fn add_kev(&mut self, entry: KevEntry) {
        self.kev.insert(entry.cve.clone(), entry);
    }

    pub fn add_epss(&mut self, entry: EpssEntry) {
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
    ) -> Result<Vec<Arc<Advisory>>, SourceError> {
        Ok(self
            .by_package
            .get(ecosystem)
            .and_then(|packages| packages.get(package))
            .map(|indices| {
                indices
                    .iter()
                    .map(|&i| self.advisories[i].clone())
                    .collect()
            })
            .unwrap_or_default())
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
}

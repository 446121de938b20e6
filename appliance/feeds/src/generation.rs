//! One feed generation: a directory `feeds/gen-NNNNNNNNNN/` holding `feeds.redb` (every record of
//! every channel, plus lookup tables) and `index/` (tantivy). A generation is written once, under
//! a `.partial` name, fsynced, renamed, and only then made current by the catalog switch; it is
//! never modified afterwards.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stella_importer::state::KitState;
use stella_importer::{Advisory, EpssEntry, KevEntry, VexClaim};

use crate::FeedError;
use crate::index::{QueryProblem, SearchIndex, SearchPage, SearchRequest, write_index};

/// `kind \0 channel \0 key` → canonical JSON of the record.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// `ecosystem \0 package \0 channel \0 advisory id` → ().
const BY_PACKAGE: TableDefinition<&str, ()> = TableDefinition::new("by_package");
/// `alias \0 channel \0 advisory id` → (), with each advisory's own id among its aliases.
const BY_ALIAS: TableDefinition<&str, ()> = TableDefinition::new("by_alias");
/// `vulnerability \0 channel \0 claim key` → ().
const VEX_BY_VULN: TableDefinition<&str, ()> = TableDefinition::new("vex_by_vulnerability");
/// `channels` → JSON array of the channel names in this generation.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Record kinds as stored in the key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Advisory,
    Vex,
    Kev,
    Epss,
    Licence,
    Revocation,
    KeyUpdate,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Advisory,
        Kind::Vex,
        Kind::Kev,
        Kind::Epss,
        Kind::Licence,
        Kind::Revocation,
        Kind::KeyUpdate,
    ];

    fn tag(self) -> &'static str {
        match self {
            Kind::Advisory => "adv",
            Kind::Vex => "vex",
            Kind::Kev => "kev",
            Kind::Epss => "epss",
            Kind::Licence => "lic",
            Kind::Revocation => "rev",
            Kind::KeyUpdate => "key",
        }
    }

    fn from_tag(tag: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

fn record_key(kind: Kind, channel: &str, key: &str) -> String {
    format!("{}\0{channel}\0{key}", kind.tag())
}

/// Record counts of a generation; stored in the catalog at the switch and re-checked by the
/// integrity check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Advisories (one per advisory and channel).
    pub advisories: u64,
    /// VEX claims.
    pub vex_claims: u64,
    /// KEV entries.
    pub kev: u64,
    /// EPSS rows.
    pub epss: u64,
    /// Signed licences.
    pub licences: u64,
    /// Signed revocation lists.
    pub revocations: u64,
    /// Signed kit-key updates (rotations).
    #[serde(default)]
    pub key_updates: u64,
}

impl Counts {
    fn bump(&mut self, kind: Kind) {
        let slot = match kind {
            Kind::Advisory => &mut self.advisories,
            Kind::Vex => &mut self.vex_claims,
            Kind::Kev => &mut self.kev,
            Kind::Epss => &mut self.epss,
            Kind::Licence => &mut self.licences,
            Kind::Revocation => &mut self.revocations,
            Kind::KeyUpdate => &mut self.key_updates,
        };
        *slot += 1;
    }
}

/// The directory name of generation `n`.
pub(crate) fn dir_name(n: u64) -> String {
    format!("gen-{n:010}")
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, FeedError> {
    serde_json::to_vec(value).map_err(|e| FeedError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Writes generation `number` holding `states` (channel → state) under `feeds_dir`, returning
/// its counts. On return the directory has its final name and every byte is on disk.
pub(crate) fn write(
    feeds_dir: &Path,
    number: u64,
    states: &BTreeMap<String, KitState>,
) -> Result<Counts, FeedError> {
    let final_dir = feeds_dir.join(dir_name(number));
    let partial = feeds_dir.join(format!("{}.partial", dir_name(number)));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| FeedError::io("remove stale partial generation", &partial, e))?;
    }
    std::fs::create_dir_all(&partial)
        .map_err(|e| FeedError::io("create generation dir", &partial, e))?;

    let db_path = partial.join("feeds.redb");
    let redb_err = |e: redb::Error| FeedError::Redb {
        path: db_path.clone(),
        source: e,
    };
    let db = Database::create(&db_path).map_err(|e| redb_err(e.into()))?;
    let mut counts = Counts::default();
    let txn = db.begin_write().map_err(|e| redb_err(e.into()))?;
    {
        let mut records = txn.open_table(RECORDS).map_err(|e| redb_err(e.into()))?;
        let mut by_package = txn.open_table(BY_PACKAGE).map_err(|e| redb_err(e.into()))?;
        let mut by_alias = txn.open_table(BY_ALIAS).map_err(|e| redb_err(e.into()))?;
        let mut vex_by_vuln = txn
            .open_table(VEX_BY_VULN)
            .map_err(|e| redb_err(e.into()))?;
        let mut put = |kind: Kind, channel: &str, key: &str, bytes: Vec<u8>| {
            counts.bump(kind);
            records
                .insert(record_key(kind, channel, key).as_str(), bytes.as_slice())
                .map(drop)
                .map_err(|e| redb_err(e.into()))
        };
        for (channel, state) in states {
            for (id, advisory) in &state.advisories {
                put(Kind::Advisory, channel, id, encode(advisory, id)?)?;
                for affected in &advisory.affected {
                    let key = format!(
                        "{}\0{}\0{channel}\0{id}",
                        affected.ecosystem, affected.package
                    );
                    by_package
                        .insert(key.as_str(), ())
                        .map_err(|e| redb_err(e.into()))?;
                }
                for alias in advisory.aliases.iter().chain(std::iter::once(id)) {
                    let key = format!("{alias}\0{channel}\0{id}");
                    by_alias
                        .insert(key.as_str(), ())
                        .map_err(|e| redb_err(e.into()))?;
                }
            }
            for (key, claim) in &state.vex_claims {
                put(Kind::Vex, channel, key, encode(claim, key)?)?;
                let index_key = format!("{}\0{channel}\0{key}", claim.vulnerability);
                vex_by_vuln
                    .insert(index_key.as_str(), ())
                    .map_err(|e| redb_err(e.into()))?;
            }
            for (key, entry) in &state.kev {
                put(Kind::Kev, channel, key, encode(entry, key)?)?;
            }
            for (key, entry) in &state.epss {
                put(Kind::Epss, channel, key, encode(entry, key)?)?;
            }
            for (key, licence) in &state.licences {
                put(Kind::Licence, channel, key, encode(licence, key)?)?;
            }
            for (key, list) in &state.revocations {
                put(Kind::Revocation, channel, key, encode(list, key)?)?;
            }
            for (key, update) in &state.key_updates {
                put(Kind::KeyUpdate, channel, key, encode(update, key)?)?;
            }
        }
    }
    {
        let mut meta = txn.open_table(META).map_err(|e| redb_err(e.into()))?;
        let channels: Vec<&String> = states.keys().collect();
        meta.insert("channels", encode(&channels, "channels")?.as_slice())
            .map_err(|e| redb_err(e.into()))?;
    }
    txn.commit().map_err(|e| redb_err(e.into()))?;
    drop(db);

    let indexed = write_index(
        &partial.join("index"),
        states.iter().flat_map(|(channel, state)| {
            state
                .advisories
                .values()
                .map(move |a| (channel.as_str(), a))
        }),
    )?;
    debug_assert_eq!(indexed, counts.advisories);

    sync_dir(&partial.join("index"))?;
    sync_dir(&partial)?;
    std::fs::rename(&partial, &final_dir)
        .map_err(|e| FeedError::io("rename generation into place", &final_dir, e))?;
    sync_dir(feeds_dir)?;
    Ok(counts)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), FeedError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FeedError::io("fsync directory", dir, e))
}

/// An open, read-only generation.
pub struct Generation {
    number: u64,
    dir: PathBuf,
    db: Database,
    index: SearchIndex,
    /// `ecosystem \0 package` -> the package's advisories, decoded once and shared: a
    /// generation never changes, so the per-package index fills as packages are asked for
    /// and every later lookup is one hash probe with no decoding.
    packages: RwLock<HashMap<String, PackageList>>,
    /// Every VEX claim by the product it covers, read once when first asked for.
    vex_products: OnceLock<VexProducts>,
}

/// One package's advisories, ordered by id, then channel.
pub type PackageList = Arc<[Arc<Advisory>]>;

/// The products VEX claims cover (a claim's subcomponents, or its product when it names none:
/// what `stella_decide::vex::claim_applies` matches against), each with its claims and their
/// channels, ordered by product.
pub type VexProducts = Arc<BTreeMap<String, Vec<(String, Arc<VexClaim>)>>>;

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("number", &self.number)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Generation {
    pub(crate) fn open(feeds_dir: &Path, number: u64) -> Result<Self, FeedError> {
        let dir = feeds_dir.join(dir_name(number));
        let db_path = dir.join("feeds.redb");
        if !db_path.exists() {
            return Err(FeedError::Corrupt(format!(
                "current feed generation {} is missing {}",
                number,
                db_path.display()
            )));
        }
        let db = Database::open(&db_path).map_err(|e| FeedError::Redb {
            path: db_path.clone(),
            source: e.into(),
        })?;
        let index = SearchIndex::open(&dir.join("index"))?;
        Ok(Self {
            number,
            dir,
            db,
            index,
            packages: RwLock::new(HashMap::new()),
            vex_products: OnceLock::new(),
        })
    }

    /// The generation number.
    pub fn number(&self) -> u64 {
        self.number
    }

    fn redb_err(&self, e: impl Into<redb::Error>) -> FeedError {
        FeedError::Redb {
            path: self.dir.join("feeds.redb"),
            source: e.into(),
        }
    }

    /// Reads every record back into per-channel states (the base for the next generation, and
    /// what tests compare against the contract's reference `KitState`).
    pub fn states(&self) -> Result<BTreeMap<String, KitState>, FeedError> {
        self.states_except(None)
    }

    /// [`Generation::states`] without the records of `skip` (a full kit replaces that channel
    /// whole, so reading it would only cost memory).
    pub(crate) fn states_except(
        &self,
        skip: Option<&str>,
    ) -> Result<BTreeMap<String, KitState>, FeedError> {
        let txn = self.db.begin_read().map_err(|e| self.redb_err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.redb_err(e))?;
        let mut states: BTreeMap<String, KitState> = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.redb_err(e))? {
            let (key, value) = entry.map_err(|e| self.redb_err(e))?;
            let key = key.value();
            let mut parts = key.splitn(3, '\0');
            let (Some(tag), Some(channel), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(FeedError::Corrupt(format!("malformed record key {key:?}")));
            };
            let kind = Kind::from_tag(tag)
                .ok_or_else(|| FeedError::Corrupt(format!("unknown record kind in {key:?}")))?;
            if skip == Some(channel) {
                continue;
            }
            let state = states.entry(channel.to_owned()).or_default();
            let bytes = value.value();
            let id = id.to_owned();
            match kind {
                Kind::Advisory => {
                    state.advisories.insert(id, decode(bytes, key)?);
                }
                Kind::Vex => {
                    state.vex_claims.insert(id, decode(bytes, key)?);
                }
                Kind::Kev => {
                    state.kev.insert(id, decode(bytes, key)?);
                }
                Kind::Epss => {
                    state.epss.insert(id, decode(bytes, key)?);
                }
                Kind::Licence => {
                    state.licences.insert(id, decode(bytes, key)?);
                }
                Kind::Revocation => {
                    state.revocations.insert(id, decode(bytes, key)?);
                }
                Kind::KeyUpdate => {
                    state.key_updates.insert(id, decode(bytes, key)?);
                }
            }
        }
        Ok(states)
    }

    /// Counts the records as stored, decoding each one (the integrity check).
    pub(crate) fn recount(&self) -> Result<Counts, FeedError> {
        let states = self.states()?;
        let mut counts = Counts::default();
        for state in states.values() {
            counts.advisories += state.advisories.len() as u64;
            counts.vex_claims += state.vex_claims.len() as u64;
            counts.kev += state.kev.len() as u64;
            counts.epss += state.epss.len() as u64;
            counts.licences += state.licences.len() as u64;
            counts.revocations += state.revocations.len() as u64;
            counts.key_updates += state.key_updates.len() as u64;
        }
        Ok(counts)
    }

    /// Number of documents in the search index.
    pub fn indexed(&self) -> u64 {
        self.index.len()
    }

    /// Ranked advisory search.
    pub fn search(&self, query: &str, limit: usize) -> Result<crate::SearchResults, FeedError> {
        self.index.search(query, limit)
    }

    /// Faceted search for the console: a query that does not parse is returned as a
    /// [`QueryProblem`] to explain, not retried.
    pub fn search_page(
        &self,
        request: &SearchRequest,
    ) -> Result<Result<SearchPage, QueryProblem>, FeedError> {
        self.index.search_page(request)
    }

    fn scan_prefix<V: redb::Value + 'static>(
        &self,
        table: TableDefinition<&str, V>,
        prefix: &str,
    ) -> Result<Vec<String>, FeedError> {
        let txn = self.db.begin_read().map_err(|e| self.redb_err(e))?;
        let table = txn.open_table(table).map_err(|e| self.redb_err(e))?;
        let mut keys = Vec::new();
        for entry in table.range(prefix..).map_err(|e| self.redb_err(e))? {
            let (key, _) = entry.map_err(|e| self.redb_err(e))?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key[prefix.len()..].to_owned());
        }
        Ok(keys)
    }

    fn record<T: DeserializeOwned>(
        &self,
        kind: Kind,
        channel: &str,
        key: &str,
    ) -> Result<Option<T>, FeedError> {
        let txn = self.db.begin_read().map_err(|e| self.redb_err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.redb_err(e))?;
        let full = record_key(kind, channel, key);
        match table.get(full.as_str()).map_err(|e| self.redb_err(e))? {
            Some(value) => decode(value.value(), &full).map(Some),
            None => Ok(None),
        }
    }

    /// Advisories affecting `package` in `ecosystem` (the *source* package for distros), from
    /// every channel, ordered by channel then id.
    pub fn advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<Vec<(String, Advisory)>, FeedError> {
        let mut out = Vec::new();
        for rest in self.scan_prefix(BY_PACKAGE, &format!("{ecosystem}\0{package}\0"))? {
            if let Some((channel, id)) = rest.split_once('\0')
                && let Some(advisory) = self.record(Kind::Advisory, channel, id)?
            {
                out.push((channel.to_owned(), advisory));
            }
        }
        Ok(out)
    }

    /// [`Generation::advisories_for_package`] as one shared list ordered by id (then channel),
    /// through the generation's in-memory per-package index: the first lookup of a package
    /// decodes its records, later lookups hand out the same list (and the same records).
    pub fn shared_advisories_for_package(
        &self,
        ecosystem: &str,
        package: &str,
    ) -> Result<PackageList, FeedError> {
        let key = format!("{ecosystem}\0{package}");
        if let Some(found) = self
            .packages
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(found.clone());
        }
        let mut list: Vec<Arc<Advisory>> = self
            .advisories_for_package(ecosystem, package)?
            .into_iter()
            .map(|(_, advisory)| Arc::new(advisory))
            .collect();
        // Stable: records sharing an id stay in channel order.
        list.sort_by(|a, b| a.id.cmp(&b.id));
        let list: PackageList = Arc::from(list);
        // Two threads may decode the same package at once; the first list stored wins, so
        // every caller sees the same records.
        Ok(self
            .packages
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_insert(list)
            .clone())
    }

    /// Advisories whose id or alias is `id`, from every channel.
    pub fn advisories_by_alias(&self, id: &str) -> Result<Vec<(String, Advisory)>, FeedError> {
        let mut out = Vec::new();
        for rest in self.scan_prefix(BY_ALIAS, &format!("{id}\0"))? {
            if let Some((channel, advisory_id)) = rest.split_once('\0')
                && let Some(advisory) = self.record(Kind::Advisory, channel, advisory_id)?
            {
                out.push((channel.to_owned(), advisory));
            }
        }
        Ok(out)
    }

    /// VEX claims about `vulnerability`, from every channel.
    pub fn vex_claims_for(&self, vulnerability: &str) -> Result<Vec<VexClaim>, FeedError> {
        Ok(self
            .vex_claims_with_channel(vulnerability)?
            .into_iter()
            .map(|(_, claim)| claim)
            .collect())
    }

    /// [`Generation::vex_claims_for`] with the channel that carried each claim.
    pub fn vex_claims_with_channel(
        &self,
        vulnerability: &str,
    ) -> Result<Vec<(String, VexClaim)>, FeedError> {
        let mut out = Vec::new();
        for rest in self.scan_prefix(VEX_BY_VULN, &format!("{vulnerability}\0"))? {
            if let Some((channel, key)) = rest.split_once('\0')
                && let Some(claim) = self.record(Kind::Vex, channel, key)?
            {
                out.push((channel.to_owned(), claim));
            }
        }
        Ok(out)
    }

    /// Every VEX claim by the product it covers. The first call decodes every claim; the
    /// generation never changes, so later calls share that map.
    pub fn vex_products(&self) -> Result<VexProducts, FeedError> {
        if let Some(found) = self.vex_products.get() {
            return Ok(found.clone());
        }
        let mut products: BTreeMap<String, Vec<(String, Arc<VexClaim>)>> = BTreeMap::new();
        for (channel, claim) in self.records_of::<VexClaim>(Kind::Vex)? {
            let claim = Arc::new(claim);
            let covered = if claim.subcomponents.is_empty() {
                std::slice::from_ref(&claim.product)
            } else {
                claim.subcomponents.as_slice()
            };
            for product in covered {
                products
                    .entry(product.clone())
                    .or_default()
                    .push((channel.clone(), claim.clone()));
            }
        }
        // Two threads may build it at once; the first stored wins.
        Ok(self.vex_products.get_or_init(|| Arc::new(products)).clone())
    }

    /// The KEV entry of a CVE, from the first channel that has one.
    pub fn kev(&self, cve: &str) -> Result<Option<KevEntry>, FeedError> {
        self.first_in_channels(Kind::Kev, cve)
    }

    /// The EPSS row of a CVE, from the first channel that has one.
    pub fn epss(&self, cve: &str) -> Result<Option<EpssEntry>, FeedError> {
        self.first_in_channels(Kind::Epss, cve)
    }

    fn first_in_channels<T: DeserializeOwned>(
        &self,
        kind: Kind,
        key: &str,
    ) -> Result<Option<T>, FeedError> {
        for channel in self.channels()? {
            if let Some(found) = self.record(kind, &channel, key)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Channels present in this generation.
    pub fn channels(&self) -> Result<Vec<String>, FeedError> {
        let txn = self.db.begin_read().map_err(|e| self.redb_err(e))?;
        let table = txn.open_table(META).map_err(|e| self.redb_err(e))?;
        match table.get("channels").map_err(|e| self.redb_err(e))? {
            Some(value) => decode(value.value(), "meta/channels"),
            None => Ok(Vec::new()),
        }
    }

    /// Every record of one kind, as `(channel, key, record)`, in key order.
    fn records_of<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, FeedError> {
        let txn = self.db.begin_read().map_err(|e| self.redb_err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.redb_err(e))?;
        let start = format!("{}\0", kind.tag());
        let end = format!("{}\u{1}", kind.tag());
        let mut out = Vec::new();
        for entry in table
            .range(start.as_str()..end.as_str())
            .map_err(|e| self.redb_err(e))?
        {
            let (key, value) = entry.map_err(|e| self.redb_err(e))?;
            let key = key.value();
            let channel = key.split('\0').nth(1).unwrap_or_default().to_owned();
            out.push((channel, decode(value.value(), key)?));
        }
        Ok(out)
    }

    /// Every licence kits brought, with its channel (for the signer's entitlement gate).
    pub fn licences(
        &self,
    ) -> Result<Vec<(String, stella_importer::licence::SignedLicence)>, FeedError> {
        self.records_of(Kind::Licence)
    }

    /// Every revocation list kits brought, with its channel.
    pub fn revocation_lists(
        &self,
    ) -> Result<Vec<(String, stella_importer::licence::SignedRevocationList)>, FeedError> {
        self.records_of(Kind::Revocation)
    }

    /// Every advisory of every channel (for the matcher's full scans and for exports).
    pub fn all_advisories(&self) -> Result<Vec<(String, Advisory)>, FeedError> {
        Ok(self
            .states()?
            .into_iter()
            .flat_map(|(channel, state)| {
                state
                    .advisories
                    .into_values()
                    .map(move |a| (channel.clone(), a))
            })
            .collect())
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8], key: &str) -> Result<T, FeedError> {
    serde_json::from_slice(bytes).map_err(|e| {
        FeedError::Corrupt(format!(
            "record {:?} does not decode: {e}",
            key.replace('\0', "/")
        ))
    })
}

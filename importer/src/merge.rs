//! Alias merging: records from all sources that name the same vulnerability become one advisory,
//! field by field under the precedence rules documented in `docs/offline-kit.md`.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Advisory, EpssEntry, EpssScore, KevEntry, KevFlag, is_cve};

/// Rank of a source kind for scalar text fields (lower wins). The kind is the part of a source
/// reference before the first `:`.
pub fn source_rank(source: &str) -> u8 {
    match source.split(':').next().unwrap_or("") {
        "osv" => 0,
        "nodejs-security-wg" => 1,
        "nvd" => 2,
        "debian-json" => 3,
        "debian-dsa" | "debian-dla" => 4,
        "alpine-secdb" => 5,
        _ => 9,
    }
}

/// Counts reported by [`merge_advisories`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Records before merging.
    pub input: usize,
    /// Advisories after merging.
    pub output: usize,
    /// Output advisories built from more than one input record.
    pub merged_groups: usize,
    /// Largest number of input records in one advisory.
    pub largest_group: usize,
    /// Advisories that received a KEV flag / an EPSS score.
    pub with_kev: usize,
    pub with_epss: usize,
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn find(&mut self, mut node: usize) -> usize {
        while self.parent[node] != node {
            self.parent[node] = self.parent[self.parent[node]];
            node = self.parent[node];
        }
        node
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            // Keep the smaller index as root so the result does not depend on union order.
            let (low, high) = if a < b { (a, b) } else { (b, a) };
            self.parent[high] = low;
        }
    }
}

fn primary_id(keys: &BTreeSet<String>, records: &[&Advisory]) -> String {
    if let Some(cve) = keys.iter().find(|key| is_cve(key)) {
        return cve.clone();
    }
    if let Some(ghsa) = keys.iter().find(|key| key.starts_with("GHSA-")) {
        return ghsa.clone();
    }
    records.first().map(|r| r.id.clone()).unwrap_or_default()
}

/// Merges `records` by shared id/alias and attaches KEV flags and EPSS scores by CVE.
///
/// Rules (also in `docs/offline-kit.md`): the id is the smallest CVE id among the group's keys,
/// else the smallest GHSA id, else the id of the highest-precedence record. `summary`, `details`
/// and `withdrawn` come from the highest-precedence record that has them (order: osv,
/// nodejs-security-wg, nvd, debian-json, debian-dsa/dla, alpine-secdb; ties by source reference). `published` is
/// the earliest and `modified` the latest value. `affected`, `severities` and `references` are the
/// union, each element keeping its own `source`. KEV and EPSS come from their feeds, looked up by
/// the primary id if it is a CVE, else by the smallest CVE alias that has an entry.
pub fn merge_advisories(
    records: Vec<Advisory>,
    kev: &[KevEntry],
    epss: &[EpssEntry],
) -> (Vec<Advisory>, MergeStats) {
    let mut records = records;
    // Deterministic input order, whatever order files were read in.
    records.sort_by(|a, b| {
        (source_rank(first_source(a)), first_source(a), &a.id).cmp(&(
            source_rank(first_source(b)),
            first_source(b),
            &b.id,
        ))
    });
    // Group by shared keys. The key map borrows the records, so it lives in this block only.
    let groups: BTreeMap<usize, Vec<usize>> = {
        let mut union_find = UnionFind {
            parent: (0..records.len()).collect(),
        };
        let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, record) in records.iter().enumerate() {
            for key in std::iter::once(&record.id).chain(record.aliases.iter()) {
                match owner.get(key.as_str()) {
                    Some(&other) => union_find.union(index, other),
                    None => {
                        owner.insert(key.as_str(), index);
                    }
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for index in 0..records.len() {
            let root = union_find.find(index);
            groups.entry(root).or_default().push(index);
        }
        groups
    };
    let kev_by_cve: BTreeMap<&str, &KevEntry> = kev
        .iter()
        .map(|entry| (entry.cve.as_str(), entry))
        .collect();
    let epss_by_cve: BTreeMap<&str, &EpssEntry> = epss
        .iter()
        .map(|entry| (entry.cve.as_str(), entry))
        .collect();
    let mut stats = MergeStats {
        input: records.len(),
        ..MergeStats::default()
    };
    // Records are moved out group by group, so inputs are freed as merged advisories are made.
    let mut slots: Vec<Option<Advisory>> = records.into_iter().map(Some).collect();
    let mut output = Vec::with_capacity(groups.len());
    for members in groups.values() {
        let group: Vec<Advisory> = members.iter().filter_map(|&i| slots[i].take()).collect();
        if group.len() > 1 {
            stats.merged_groups += 1;
        }
        stats.largest_group = stats.largest_group.max(group.len());
        let mut advisory = merge_group(group);
        let mut cves: Vec<&String> = Vec::new();
        if is_cve(&advisory.id) {
            cves.push(&advisory.id);
        }
        cves.extend(advisory.aliases.iter().filter(|alias| is_cve(alias)));
        let kev_hit = cves
            .iter()
            .find_map(|cve| kev_by_cve.get(cve.as_str()).copied());
        let epss_hit = cves
            .iter()
            .find_map(|cve| epss_by_cve.get(cve.as_str()).copied());
        if let Some(entry) = kev_hit {
            advisory.kev = Some(KevFlag {
                date_added: entry.date_added.clone(),
                due_date: entry.due_date.clone(),
                ransomware: entry.ransomware.clone(),
            });
            advisory
                .provenance
                .insert("kev".into(), format!("kev:{}", entry.cve));
            stats.with_kev += 1;
        }
        if let Some(entry) = epss_hit {
            advisory.epss = Some(EpssScore {
                score: entry.score,
                percentile: entry.percentile,
                date: entry.date.clone(),
            });
            advisory
                .provenance
                .insert("epss".into(), format!("epss:{}", entry.cve));
            stats.with_epss += 1;
        }
        advisory.normalize();
        output.push(advisory);
    }
    output.sort_by(|a, b| a.id.cmp(&b.id));
    // Two groups could pick the same primary id only if they shared that key, in which case they
    // would be one group; keep the check so a bug here cannot produce duplicate kit records.
    output.dedup_by(|a, b| a.id == b.id);
    stats.output = output.len();
    (output, stats)
}

fn first_source(advisory: &Advisory) -> &str {
    advisory
        .sources
        .iter()
        .next()
        .map(String::as_str)
        .unwrap_or("")
}

fn merge_group(group: Vec<Advisory>) -> Advisory {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for record in &group {
        keys.insert(record.id.clone());
        keys.extend(record.aliases.iter().cloned());
    }
    let refs: Vec<&Advisory> = group.iter().collect();
    let id = primary_id(&keys, &refs);
    let mut merged = Advisory::new(&id, first_source(&group[0]));
    merged.sources.clear();
    merged.aliases = keys;
    let mut provenance = BTreeMap::new();
    // Scalar fields first (they need the whole group), then the lists are moved in.
    let first_with = |get: &dyn Fn(&Advisory) -> Option<&String>| -> Option<(String, String)> {
        group.iter().find_map(|record| {
            get(record).map(|value| (value.clone(), first_source(record).to_string()))
        })
    };
    let mut set = |field: &str, value: Option<(String, String)>, target: &mut Option<String>| {
        if let Some((value, source)) = value {
            *target = Some(value);
            provenance.insert(field.to_string(), source);
        }
    };
    set(
        "summary",
        first_with(&|r| r.summary.as_ref()),
        &mut merged.summary,
    );
    set(
        "details",
        first_with(&|r| r.details.as_ref()),
        &mut merged.details,
    );
    set(
        "withdrawn",
        first_with(&|r| r.withdrawn.as_ref()),
        &mut merged.withdrawn,
    );
    let earliest = group
        .iter()
        .filter_map(|r| {
            r.published
                .as_ref()
                .map(|p| (p.clone(), first_source(r).to_string()))
        })
        .min_by(|a, b| a.0.cmp(&b.0));
    set("published", earliest, &mut merged.published);
    let latest = group
        .iter()
        .filter_map(|r| {
            r.modified
                .as_ref()
                .map(|m| (m.clone(), first_source(r).to_string()))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    set("modified", latest, &mut merged.modified);
    merged.provenance = provenance;
    for record in group {
        merged.sources.extend(record.sources);
        merged.related.extend(record.related);
        merged.affected.extend(record.affected);
        merged.severities.extend(record.severities);
        merged.references.extend(record.references);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, source: &str, aliases: &[&str], summary: Option<&str>) -> Advisory {
        let mut advisory = Advisory::new(id, source);
        advisory
            .aliases
            .extend(aliases.iter().map(|a| a.to_string()));
        advisory.summary = summary.map(str::to_string);
        advisory
    }

    #[test]
    fn merges_transitively_and_prefers_cve_and_osv_text() {
        let records = vec![
            record("CVE-2021-1000", "debian-dsa:DSA-1", &[], Some("dsa text")),
            record(
                "PYSEC-2021-1",
                "osv:PYSEC-2021-1",
                &["CVE-2021-1000", "GHSA-aaaa-bbbb-cccc"],
                Some("osv text"),
            ),
            record("GHSA-aaaa-bbbb-cccc", "osv:GHSA-aaaa-bbbb-cccc", &[], None),
            record("CVE-2022-2000", "alpine-secdb:CVE-2022-2000", &[], None),
        ];
        let kev = vec![KevEntry {
            cve: "CVE-2021-1000".into(),
            date_added: "2022-01-01".into(),
            due_date: None,
            ransomware: None,
            vendor: None,
            product: None,
            name: None,
        }];
        let (merged, stats) = merge_advisories(records.clone(), &kev, &[]);
        assert_eq!(merged.len(), 2);
        assert_eq!(stats.merged_groups, 1);
        assert_eq!(stats.largest_group, 3);
        let first = &merged[0];
        assert_eq!(first.id, "CVE-2021-1000");
        assert_eq!(first.summary.as_deref(), Some("osv text"));
        assert_eq!(first.provenance["summary"], "osv:PYSEC-2021-1");
        assert!(
            first.aliases.contains("PYSEC-2021-1") && first.aliases.contains("GHSA-aaaa-bbbb-cccc")
        );
        assert!(first.kev.is_some());
        // Input order does not matter.
        let mut reversed = records;
        reversed.reverse();
        assert_eq!(merge_advisories(reversed, &kev, &[]).0, merged);
    }
}

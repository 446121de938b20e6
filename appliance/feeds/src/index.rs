//! The tantivy advisory index inside each feed generation: schema, writing, and ranked search.

use std::path::Path;

use stella_importer::Advisory;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::{Field, INDEXED, STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, doc};

use crate::FeedError;

/// Field handles of the advisory schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    id: Field,
    alias: Field,
    package: Field,
    ecosystem: Field,
    summary: Field,
    cvss: Field,
    kev: Field,
    channel: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        alias: builder.add_text_field("alias", STRING | STORED),
        package: builder.add_text_field("package", TEXT | STORED),
        ecosystem: builder.add_text_field("ecosystem", STRING | STORED),
        summary: builder.add_text_field("summary", TEXT | STORED),
        cvss: builder.add_f64_field("cvss", INDEXED | STORED),
        kev: builder.add_u64_field("kev", INDEXED | STORED),
        channel: builder.add_text_field("channel", STRING | STORED),
    };
    (builder.build(), fields)
}

/// Writes a fresh index of `advisories` into `dir` (which must not exist yet).
pub(crate) fn write_index<'a>(
    dir: &Path,
    advisories: impl Iterator<Item = (&'a str, &'a Advisory)>,
) -> Result<u64, FeedError> {
    let err = |source| FeedError::Index {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir)
        .map_err(|source| FeedError::io("create index dir", dir, source))?;
    let (schema, f) = schema();
    let index = Index::create_in_dir(dir, schema).map_err(err)?;
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, 64 << 20)
        .map_err(err)?;
    let mut count = 0u64;
    for (channel, advisory) in advisories {
        let mut document = doc!(
            f.id => advisory.id.as_str(),
            f.channel => channel,
            f.kev => u64::from(advisory.kev.is_some()),
            f.cvss => max_cvss(advisory),
        );
        for alias in &advisory.aliases {
            document.add_text(f.alias, alias);
        }
        for affected in &advisory.affected {
            document.add_text(f.package, &affected.package);
            document.add_text(f.ecosystem, &affected.ecosystem);
        }
        let mut text = advisory.summary.clone().unwrap_or_default();
        if let Some(details) = &advisory.details {
            text.push('\n');
            text.push_str(details);
        }
        document.add_text(f.summary, &text);
        writer.add_document(document).map_err(err)?;
        count += 1;
    }
    writer.commit().map_err(err)?;
    writer.wait_merging_threads().map_err(err)?;
    Ok(count)
}

fn max_cvss(advisory: &Advisory) -> f64 {
    advisory
        .severities
        .iter()
        .filter_map(|s| s.score)
        .fold(0.0, f64::max)
}

/// An opened, read-only index of one generation.
pub(crate) struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchHit {
    /// Advisory id.
    pub id: String,
    /// Channel that carried it.
    pub channel: String,
    /// Aliases (CVE, GHSA, ...).
    pub aliases: Vec<String>,
    /// Affected package names.
    pub packages: Vec<String>,
    /// Ecosystems of the affected packages.
    pub ecosystems: Vec<String>,
    /// Summary (and details) text.
    pub summary: String,
    /// Highest CVSS base score, 0 when none.
    pub cvss: f64,
    /// Listed in CISA KEV.
    pub kev: bool,
    /// Relevance score.
    pub score: f32,
}

/// Hits and the total number of matching advisories.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchResults {
    /// Matching documents in all.
    pub total: usize,
    /// The best `limit` hits, best first.
    pub hits: Vec<SearchHit>,
}

impl SearchIndex {
    pub(crate) fn open(dir: &Path) -> Result<Self, FeedError> {
        let err = |source| FeedError::Index {
            path: dir.to_owned(),
            source,
        };
        let index = Index::open_in_dir(dir).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(Self {
            index,
            reader,
            fields: schema().1,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Ranked search over id, aliases, package names and summary. Query syntax is tantivy's
    /// (`log4j`, `id:CVE-2021-44228`, `ecosystem:PyPI AND kev:1`); a query that does not parse
    /// is retried as plain words.
    pub(crate) fn search(&self, query: &str, limit: usize) -> Result<SearchResults, FeedError> {
        let f = self.fields;
        let mut parser =
            QueryParser::for_index(&self.index, vec![f.id, f.alias, f.package, f.summary]);
        parser.set_field_boost(f.id, 4.0);
        parser.set_field_boost(f.alias, 4.0);
        parser.set_field_boost(f.package, 2.0);
        let parsed = match parser.parse_query(query) {
            Ok(parsed) => parsed,
            Err(_) => {
                let words: String = query
                    .chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '-' {
                            c
                        } else {
                            ' '
                        }
                    })
                    .collect();
                parser
                    .parse_query(&words)
                    .map_err(|e| FeedError::Query(e.to_string()))?
            }
        };
        let searcher = self.reader.searcher();
        let (top, total) = searcher
            .search(
                &parsed,
                &(TopDocs::with_limit(limit.max(1)).order_by_score(), Count),
            )
            .map_err(|source| FeedError::Query(source.to_string()))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher
                .doc(address)
                .map_err(|source| FeedError::Query(source.to_string()))?;
            let texts = |field| -> Vec<String> {
                document
                    .get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let first = |field| texts(field).into_iter().next().unwrap_or_default();
            let mut ecosystems = texts(f.ecosystem);
            ecosystems.sort();
            ecosystems.dedup();
            hits.push(SearchHit {
                id: first(f.id),
                channel: first(f.channel),
                aliases: texts(f.alias),
                packages: texts(f.package),
                ecosystems,
                summary: first(f.summary),
                cvss: document
                    .get_first(f.cvss)
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0),
                kev: document.get_first(f.kev).and_then(|v| v.as_u64()) == Some(1),
                score,
            });
        }
        Ok(SearchResults { total, hits })
    }
}

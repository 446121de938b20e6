//! The tantivy advisory index inside each feed generation: schema, writing, ranked search, and
//! the console's faceted search (filters, a page window, counts per ecosystem, channel and KEV
//! over the whole result set, highlighted snippets).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use stella_importer::Advisory;
use tantivy::collector::sort_key::{SortByStaticFastValue, SortByString};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, QueryParserError, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, Order, ReloadPolicy, Score, Searcher, SegmentReader,
    TantivyDocument, Term, doc,
};

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
    /// Ids of advisories that cover this one among others (DSA/DLA, USN). `None` in indexes
    /// written before the field existed.
    related: Option<Field>,
    /// Whether id and CVSS are fast fields, so results can be sorted by them (indexes written
    /// before sorting existed cannot).
    sortable: bool,
}

/// The fields a query may name (`field:value`), as the console explains them.
pub const SEARCH_FIELDS: [&str; 9] = [
    "id",
    "alias",
    "related",
    "package",
    "ecosystem",
    "summary",
    "channel",
    "kev",
    "cvss",
];

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Ecosystem, channel and KEV are fast fields: the facet counts read them column-wise. Id
    // and CVSS are fast for the console's sorted results.
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED | FAST),
        alias: builder.add_text_field("alias", STRING | STORED),
        package: builder.add_text_field("package", TEXT | STORED),
        ecosystem: builder.add_text_field("ecosystem", STRING | STORED | FAST),
        summary: builder.add_text_field("summary", TEXT | STORED),
        cvss: builder.add_f64_field("cvss", INDEXED | STORED | FAST),
        kev: builder.add_u64_field("kev", INDEXED | STORED | FAST),
        channel: builder.add_text_field("channel", STRING | STORED | FAST),
        related: Some(builder.add_text_field("related", STRING | STORED)),
        sortable: true,
    };
    (builder.build(), fields)
}

impl Fields {
    /// The handles of an index's own schema, which an older build may have written without
    /// the newer fields.
    fn of(schema: &Schema) -> Result<Self, tantivy::TantivyError> {
        let field = |name: &str| schema.get_field(name);
        Ok(Self {
            id: field("id")?,
            alias: field("alias")?,
            package: field("package")?,
            ecosystem: field("ecosystem")?,
            summary: field("summary")?,
            cvss: field("cvss")?,
            kev: field("kev")?,
            channel: field("channel")?,
            related: field("related").ok(),
            sortable: ["id", "cvss"].iter().all(|name| {
                schema
                    .get_field(name)
                    .is_ok_and(|f| schema.get_field_entry(f).is_fast())
            }),
        })
    }
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
    let mut scores = HashMap::new();
    for (channel, advisory) in advisories {
        let mut document = doc!(
            f.id => advisory.id.as_str(),
            f.channel => channel,
            f.kev => u64::from(advisory.kev.is_some()),
            f.cvss => max_cvss(advisory, &mut scores),
        );
        for alias in &advisory.aliases {
            document.add_text(f.alias, alias);
        }
        if let Some(related) = f.related {
            for id in &advisory.related {
                document.add_text(related, id);
            }
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

/// The highest CVSS base score of an advisory: the source's score, else the one its vector
/// gives (OSV records carry only vectors), scored once per distinct vector; 0 when none.
fn max_cvss(advisory: &Advisory, scores: &mut HashMap<String, Option<f64>>) -> f64 {
    advisory
        .severities
        .iter()
        .filter(|s| !s.kind.eq_ignore_ascii_case("TEXT"))
        .filter_map(|s| {
            s.score.or_else(|| {
                *scores
                    .entry(s.vector.clone())
                    .or_insert_with(|| cvss::Cvss::from_str(&s.vector).ok().map(|c| c.score()))
            })
        })
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

/// A faceted search: query text, filters that narrow it, and the window of hits to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// Tantivy query syntax; every word must match (`OR` for either). Empty matches every
    /// advisory.
    pub query: String,
    /// Only advisories affecting a package of this ecosystem.
    pub ecosystem: Option<String>,
    /// Only advisories from this channel.
    pub channel: Option<String>,
    /// Only advisories that are (`true`) or are not (`false`) in CISA KEV.
    pub kev: Option<bool>,
    /// The order of the hits.
    pub order: SearchOrder,
    /// Hits to skip (in `order`).
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
}

/// How search hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SearchOrder {
    /// Best match first (BM25; ids and aliases weigh most).
    #[default]
    Relevance,
    /// By advisory id, as text.
    Id {
        /// Z to A.
        descending: bool,
    },
    /// By the highest CVSS base score (advisories without one score 0), then by id.
    Severity {
        /// Highest first.
        descending: bool,
    },
}

/// One value of a facet and how many matching advisories have it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FacetCount {
    /// The value (an ecosystem or channel name).
    pub value: String,
    /// Matching advisories with this value.
    pub count: u64,
}

/// Counts over the whole result set (not only the returned window).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Facets {
    /// Per ecosystem, most advisories first; an advisory affecting packages of two ecosystems
    /// counts in both.
    pub ecosystems: Vec<FacetCount>,
    /// Per channel, most advisories first.
    pub channels: Vec<FacetCount>,
    /// Matching advisories listed in CISA KEV.
    pub kev: u64,
    /// Matching advisories not listed in CISA KEV.
    pub not_kev: u64,
}

/// A fragment of a snippet, highlighted when it matched the query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnippetPart {
    /// The text.
    pub text: String,
    /// Whether it is a term the query matched.
    pub matched: bool,
}

/// A hit of a faceted search with its summary snippet.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PageHit {
    /// The hit.
    #[serde(flatten)]
    pub hit: SearchHit,
    /// Up to about 200 characters of summary and details around the matched words.
    pub snippet: Vec<SnippetPart>,
}

/// The answer to a [`SearchRequest`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchPage {
    /// Matching advisories in all.
    pub total: usize,
    /// The requested window of hits, in `order`.
    pub hits: Vec<PageHit>,
    /// The order the hits are in: the requested one, or relevance when the index cannot sort
    /// (written by an older version; importing a kit rewrites it).
    pub order: SearchOrder,
    /// Counts over every matching advisory; `None` for an index written before facets existed.
    pub facets: Option<Facets>,
}

/// Why a query does not parse, for the console to explain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryProblem {
    /// `name:` names no field.
    #[error("there is no field `{field}`")]
    UnknownField {
        /// The name before the `:`.
        field: String,
    },
    /// A field that holds numbers was given something else (`kev:yes`).
    #[error("`{field}` takes a number")]
    NotANumber {
        /// The numeric field, when known.
        field: String,
    },
    /// Only `-word` exclusions: nothing to search for.
    #[error("the query only excludes words")]
    OnlyExclusions,
    /// Unbalanced quotes or brackets, a dangling operator, and the like.
    #[error("the query syntax is invalid ({detail})")]
    Syntax {
        /// The parser's own words.
        detail: String,
    },
}

impl QueryProblem {
    fn from_parser(query: &str, err: QueryParserError) -> Self {
        match err {
            QueryParserError::FieldDoesNotExist(field) => Self::UnknownField { field },
            QueryParserError::ExpectedInt(_)
            | QueryParserError::ExpectedFloat(_)
            | QueryParserError::ExpectedBool(_) => Self::NotANumber {
                field: ["kev", "cvss"]
                    .into_iter()
                    .find(|f| query.contains(&format!("{f}:")))
                    .unwrap_or("kev")
                    .to_owned(),
            },
            QueryParserError::AllButQueryForbidden => Self::OnlyExclusions,
            other => Self::Syntax {
                detail: other.to_string(),
            },
        }
    }
}

/// Characters of summary text in a snippet.
const SNIPPET_CHARS: usize = 200;

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
        let fields = Fields::of(&index.schema()).map_err(err)?;
        Ok(Self {
            index,
            reader,
            fields,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// A parser over id, aliases, related ids, package names and summary text, ids weighing
    /// most.
    fn parser(&self) -> QueryParser {
        let f = self.fields;
        let mut fields = vec![f.id, f.alias, f.package, f.summary];
        fields.extend(f.related);
        let mut parser = QueryParser::for_index(&self.index, fields);
        parser.set_field_boost(f.id, 4.0);
        parser.set_field_boost(f.alias, 4.0);
        if let Some(related) = f.related {
            parser.set_field_boost(related, 2.0);
        }
        parser.set_field_boost(f.package, 2.0);
        parser
    }

    /// Ranked search over id, aliases, package names and summary. Query syntax is tantivy's
    /// (`log4j`, `id:CVE-2021-44228`, `ecosystem:PyPI AND kev:1`); a query that does not parse
    /// is retried as plain words.
    pub(crate) fn search(&self, query: &str, limit: usize) -> Result<SearchResults, FeedError> {
        let parser = self.parser();
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
            .map_err(query_err)?;
        let hits = top
            .into_iter()
            .map(|(score, address)| Ok(self.hit(&self.document(&searcher, address)?, score)))
            .collect::<Result<_, FeedError>>()?;
        Ok(SearchResults { total, hits })
    }

    /// The console's search: the query must parse (a problem is returned, not guessed around),
    /// filters narrow it, and the facet counts cover every match.
    pub(crate) fn search_page(
        &self,
        request: &SearchRequest,
    ) -> Result<Result<SearchPage, QueryProblem>, FeedError> {
        let f = self.fields;
        let text = request.query.trim();
        let main: Box<dyn Query> = if text.is_empty() {
            Box::new(AllQuery)
        } else {
            let mut parser = self.parser();
            parser.set_conjunction_by_default();
            match parser.parse_query(text) {
                Ok(parsed) => parsed,
                Err(err) => return Ok(Err(QueryProblem::from_parser(text, err))),
            }
        };
        let term = |term: Term| -> (Occur, Box<dyn Query>) {
            (
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            )
        };
        let mut clauses = vec![(Occur::Must, main.box_clone())];
        if let Some(ecosystem) = &request.ecosystem {
            clauses.push(term(Term::from_field_text(f.ecosystem, ecosystem)));
        }
        if let Some(channel) = &request.channel {
            clauses.push(term(Term::from_field_text(f.channel, channel)));
        }
        if let Some(kev) = request.kev {
            clauses.push(term(Term::from_field_u64(f.kev, u64::from(kev))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let window = TopDocs::with_limit(request.limit.max(1)).and_offset(request.offset);
        let order = if f.sortable {
            request.order
        } else {
            SearchOrder::Relevance
        };
        let direction = |descending| if descending { Order::Desc } else { Order::Asc };
        let by_id = |descending| (SortByString::for_field("id"), direction(descending));
        // Sorted windows carry no score; their hits show 0.
        let (top, (total, facets)) = match order {
            SearchOrder::Relevance => {
                collect_window(&searcher, &query, window.order_by_score(), |score| score)
            }
            SearchOrder::Id { descending } => collect_window(
                &searcher,
                &query,
                window.order_by(by_id(descending)),
                |_| 0.0,
            ),
            SearchOrder::Severity { descending } => {
                let cvss = (
                    SortByStaticFastValue::<f64>::for_field("cvss"),
                    direction(descending),
                );
                let collector = window.order_by((cvss, by_id(false)));
                collect_window(&searcher, &query, collector, |_| 0.0)
            }
        }
        .map_err(query_err)?;
        let snippets = SnippetGenerator::create(&searcher, &*main, f.summary)
            .map(|mut generator| {
                generator.set_max_num_chars(SNIPPET_CHARS);
                generator
            })
            .map_err(query_err)?;
        let hits = top
            .into_iter()
            .map(|(score, address)| {
                let document = self.document(&searcher, address)?;
                let hit = self.hit(&document, score);
                let snippet = snippet(&snippets, &document, &hit.summary);
                Ok(PageHit { hit, snippet })
            })
            .collect::<Result<_, FeedError>>()?;
        Ok(Ok(SearchPage {
            total: total as usize,
            hits,
            order,
            facets,
        }))
    }

    fn document(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<TantivyDocument, FeedError> {
        searcher.doc(address).map_err(query_err)
    }

    fn hit(&self, document: &TantivyDocument, score: Score) -> SearchHit {
        let f = self.fields;
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
        SearchHit {
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
        }
    }
}

/// A window of hits with their scores, and the match count and facets of the whole result.
type Window = (Vec<(Score, DocAddress)>, (u64, Option<Facets>));

/// Runs `query` with the window collector `window` (whatever it orders by, its key turned into
/// a score by `score`) and the facet counts.
fn collect_window<K, C>(
    searcher: &Searcher,
    query: &dyn Query,
    window: C,
    score: impl Fn(K) -> Score,
) -> tantivy::Result<Window>
where
    C: Collector<Fruit = Vec<(K, DocAddress)>>,
{
    let (top, counts) = searcher.search(query, &(window, FacetCollector))?;
    let top = top.into_iter().map(|(key, at)| (score(key), at)).collect();
    Ok((top, counts))
}

fn query_err(source: tantivy::TantivyError) -> FeedError {
    FeedError::Query(source.to_string())
}

/// The snippet of `document` around the query's words; without a matched word (an empty query,
/// a match on the id only), the start of the summary.
fn snippet(
    generator: &SnippetGenerator,
    document: &TantivyDocument,
    summary: &str,
) -> Vec<SnippetPart> {
    let found = generator.snippet_from_doc(document);
    if found.highlighted().is_empty() {
        let mut text: String = summary.chars().take(SNIPPET_CHARS).collect();
        if text.len() < summary.len() {
            text.push('…');
        }
        return vec![SnippetPart {
            text,
            matched: false,
        }];
    }
    let fragment = found.fragment();
    let mut parts = Vec::new();
    let mut at = 0;
    for range in found.highlighted() {
        if range.start > at {
            parts.push(SnippetPart {
                text: fragment[at..range.start].to_owned(),
                matched: false,
            });
        }
        parts.push(SnippetPart {
            text: fragment[range.clone()].to_owned(),
            matched: true,
        });
        at = range.end;
    }
    if at < fragment.len() {
        parts.push(SnippetPart {
            text: fragment[at..].to_owned(),
            matched: false,
        });
    }
    parts
}

/// Counts matching documents, and per ecosystem, channel and KEV flag, from the fast columns.
struct FacetCollector;

/// Counts of one segment, or of all of them.
#[derive(Default)]
struct FacetCounts {
    ecosystems: BTreeMap<String, u64>,
    channels: BTreeMap<String, u64>,
    /// `[not in KEV, in KEV]`.
    kev: [u64; 2],
}

/// Per-segment counts by term ordinal, named at harvest. Without fast columns (an index written
/// before facets existed) only the total is counted.
struct SegmentFacets {
    total: u64,
    columns: Option<(StrColumn, StrColumn, Column<u64>)>,
    /// Matching documents per term ordinal of each column.
    ecosystems: Vec<u64>,
    channels: Vec<u64>,
    kev: [u64; 2],
    /// Per ecosystem ordinal, the last document counted for it: an advisory names an ecosystem
    /// once per affected package and counts once.
    last_counted: Vec<DocId>,
}

impl Collector for FacetCollector {
    type Fruit = (u64, Option<Facets>);
    type Child = SegmentFacets;

    fn for_segment(&self, _segment: u32, reader: &SegmentReader) -> tantivy::Result<SegmentFacets> {
        let fast = reader.fast_fields();
        let columns = match (
            fast.str("ecosystem")?,
            fast.str("channel")?,
            fast.column_opt::<u64>("kev")?,
        ) {
            (Some(ecosystem), Some(channel), Some(kev)) => Some((ecosystem, channel, kev)),
            _ => None,
        };
        let terms = |column: Option<&StrColumn>| column.map_or(0, |c| c.num_terms());
        let ecosystems = terms(columns.as_ref().map(|c| &c.0));
        let channels = terms(columns.as_ref().map(|c| &c.1));
        Ok(SegmentFacets {
            total: 0,
            columns,
            ecosystems: vec![0; ecosystems],
            channels: vec![0; channels],
            kev: [0; 2],
            last_counted: vec![DocId::MAX; ecosystems],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        segments: Vec<(u64, Option<FacetCounts>)>,
    ) -> tantivy::Result<(u64, Option<Facets>)> {
        let total = segments.iter().map(|(n, _)| n).sum();
        let mut all = FacetCounts::default();
        for (_, counts) in segments {
            // A segment without facets leaves the whole result without them.
            let Some(counts) = counts else {
                return Ok((total, None));
            };
            for (into, from) in [
                (&mut all.ecosystems, counts.ecosystems),
                (&mut all.channels, counts.channels),
            ] {
                for (value, count) in from {
                    *into.entry(value).or_default() += count;
                }
            }
            all.kev[0] += counts.kev[0];
            all.kev[1] += counts.kev[1];
        }
        let ranked = |counts: BTreeMap<String, u64>| {
            let mut list: Vec<FacetCount> = counts
                .into_iter()
                .map(|(value, count)| FacetCount { value, count })
                .collect();
            // Stable: equal counts stay in name order.
            list.sort_by_key(|f| std::cmp::Reverse(f.count));
            list
        };
        Ok((
            total,
            Some(Facets {
                ecosystems: ranked(all.ecosystems),
                channels: ranked(all.channels),
                kev: all.kev[1],
                not_kev: all.kev[0],
            }),
        ))
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = (u64, Option<FacetCounts>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        let Some((ecosystem, channel, kev)) = &self.columns else {
            return;
        };
        for ord in ecosystem.term_ords(doc) {
            let ord = ord as usize;
            if self.last_counted[ord] != doc {
                self.last_counted[ord] = doc;
                self.ecosystems[ord] += 1;
            }
        }
        if let Some(ord) = channel.term_ords(doc).next() {
            self.channels[ord as usize] += 1;
        }
        let flagged = kev.first(doc) == Some(1);
        self.kev[usize::from(flagged)] += 1;
    }

    fn harvest(self) -> Self::Fruit {
        let Some((ecosystem_column, channel_column, _)) = &self.columns else {
            return (self.total, None);
        };
        let name = |column: &StrColumn, counts: &[u64]| {
            let mut named = BTreeMap::new();
            for (ord, count) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                let mut value = String::new();
                // An ordinal the dictionary cannot resolve would be a corrupt index; the
                // facets are then left out rather than wrong.
                match column.ord_to_str(ord as u64, &mut value) {
                    Ok(true) => {
                        named.insert(value, *count);
                    }
                    _ => return None,
                }
            }
            Some(named)
        };
        let counts = match (
            name(ecosystem_column, &self.ecosystems),
            name(channel_column, &self.channels),
        ) {
            (Some(ecosystems), Some(channels)) => Some(FacetCounts {
                ecosystems,
                channels,
                kev: self.kev,
            }),
            _ => None,
        };
        (self.total, counts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use stella_importer::model::{Affected, KevFlag};

    use super::*;

    fn advisory(id: &str, ecosystems: &[(&str, &str)], summary: &str, kev: bool) -> Advisory {
        let mut advisory = Advisory::new(id, format!("osv:{id}"));
        advisory.summary = Some(summary.to_owned());
        for (ecosystem, package) in ecosystems {
            advisory.affected.push(Affected {
                ecosystem: (*ecosystem).into(),
                package: (*package).into(),
                purl: None,
                ranges: Vec::new(),
                requirements: Vec::new(),
                versions: Vec::new(),
                fixed: Vec::new(),
                distro: Vec::new(),
                source: format!("osv:{id}"),
            });
        }
        advisory.kev = kev.then(|| KevFlag {
            date_added: "2024-01-01".into(),
            due_date: None,
            ransomware: None,
        });
        advisory
    }

    fn index() -> (tempfile::TempDir, SearchIndex) {
        let mut dsa = advisory(
            "CVE-2024-0003",
            &[
                ("Debian", "openssl"),
                ("Debian", "openssl"),
                ("Alpine", "openssl"),
            ],
            "Buffer overflow in the TLS handshake",
            true,
        );
        dsa.related.insert("DSA-5500-1".into());
        dsa.severities.push(stella_importer::model::Severity {
            kind: "CVSS_V3".into(),
            vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
            score: None,
            source: "osv:CVE-2024-0003".into(),
        });
        let mut ghsa = advisory(
            "GHSA-aaaa-bbbb-cccc",
            &[("PyPI", "requests")],
            "Header injection in requests",
            false,
        );
        ghsa.aliases.insert("CVE-2024-0001".into());
        let advisories = [
            ("stable", ghsa),
            (
                "stable",
                advisory(
                    "CVE-2024-0002",
                    &[("PyPI", "urllib3")],
                    "Proxy credentials leak in urllib3",
                    false,
                ),
            ),
            ("stable", dsa),
            (
                "vendor",
                advisory(
                    "CVE-2024-0004",
                    &[("npm", "left-pad")],
                    "Proxy bypass in left-pad",
                    true,
                ),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        write_index(&path, advisories.iter().map(|(c, a)| (*c, a))).unwrap();
        let index = SearchIndex::open(&path).unwrap();
        (dir, index)
    }

    fn page(index: &SearchIndex, request: SearchRequest) -> SearchPage {
        index
            .search_page(&SearchRequest {
                limit: request.limit.max(10),
                ..request
            })
            .unwrap()
            .unwrap()
    }

    fn ids(page: &SearchPage) -> Vec<&str> {
        page.hits.iter().map(|h| h.hit.id.as_str()).collect()
    }

    #[test]
    fn hits_sort_by_id_or_severity_within_filters_and_windows() {
        let (_dir, index) = index();
        let sorted = |order, query: &str, offset, limit| {
            let found = page(
                &index,
                SearchRequest {
                    query: query.into(),
                    order,
                    offset,
                    limit,
                    ..SearchRequest::default()
                },
            );
            assert_eq!(found.order, order);
            ids(&found)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let by_id = SearchOrder::Id { descending: false };
        assert_eq!(
            sorted(by_id, "", 0, 10),
            [
                "CVE-2024-0002",
                "CVE-2024-0003",
                "CVE-2024-0004",
                "GHSA-aaaa-bbbb-cccc"
            ]
        );
        assert_eq!(
            sorted(SearchOrder::Id { descending: true }, "", 0, 10),
            [
                "GHSA-aaaa-bbbb-cccc",
                "CVE-2024-0004",
                "CVE-2024-0003",
                "CVE-2024-0002"
            ]
        );
        // The window is taken from the sorted whole, not sorted after the fact.
        assert_eq!(
            sorted(by_id, "", 1, 2)[..2],
            ["CVE-2024-0003", "CVE-2024-0004"]
        );
        // Highest CVSS first (only the Debian one has a vector, scored 9.8), ties by id.
        assert_eq!(
            sorted(SearchOrder::Severity { descending: true }, "", 0, 10),
            [
                "CVE-2024-0003",
                "CVE-2024-0002",
                "CVE-2024-0004",
                "GHSA-aaaa-bbbb-cccc"
            ]
        );
        assert_eq!(
            sorted(SearchOrder::Severity { descending: false }, "", 0, 10),
            [
                "CVE-2024-0002",
                "CVE-2024-0004",
                "GHSA-aaaa-bbbb-cccc",
                "CVE-2024-0003"
            ]
        );
        // Within a query's matches.
        assert_eq!(
            sorted(SearchOrder::Id { descending: true }, "proxy", 0, 10),
            ["CVE-2024-0004", "CVE-2024-0002"]
        );
    }

    #[test]
    fn an_index_without_sort_columns_answers_by_relevance() {
        // The schema of indexes written before sorting existed: id and CVSS not fast.
        let mut builder = Schema::builder();
        let id = builder.add_text_field("id", STRING | STORED);
        for name in ["alias", "ecosystem", "channel"] {
            builder.add_text_field(name, STRING | STORED | FAST);
        }
        builder.add_text_field("package", TEXT | STORED);
        let summary = builder.add_text_field("summary", TEXT | STORED);
        builder.add_f64_field("cvss", INDEXED | STORED);
        builder.add_u64_field("kev", INDEXED | STORED | FAST);
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create_in_dir(dir.path(), builder.build()).unwrap();
        let mut writer = index
            .writer_with_num_threads::<TantivyDocument>(1, 15 << 20)
            .unwrap();
        for n in ["CVE-2024-0002", "CVE-2024-0001"] {
            writer
                .add_document(doc!(id => n, summary => "old"))
                .unwrap();
        }
        writer.commit().unwrap();
        let old = SearchIndex::open(dir.path()).unwrap();
        let found = page(
            &old,
            SearchRequest {
                order: SearchOrder::Id { descending: false },
                ..SearchRequest::default()
            },
        );
        assert_eq!(found.order, SearchOrder::Relevance);
        assert_eq!(found.total, 2);
    }

    #[test]
    fn facets_count_every_match_once_per_advisory() {
        let (_dir, index) = index();
        let all = page(&index, SearchRequest::default());
        assert_eq!(all.total, 4);
        let facets = all.facets.unwrap();
        let count = |list: &[FacetCount], value: &str| {
            list.iter().find(|f| f.value == value).map(|f| f.count)
        };
        // The Debian advisory names Debian twice but counts once.
        assert_eq!(count(&facets.ecosystems, "Debian"), Some(1));
        assert_eq!(count(&facets.ecosystems, "PyPI"), Some(2));
        assert_eq!(facets.ecosystems[0].value, "PyPI");
        assert_eq!(count(&facets.channels, "stable"), Some(3));
        assert_eq!((facets.kev, facets.not_kev), (2, 2));
        // A one-row window still counts the whole result set.
        let window = index
            .search_page(&SearchRequest {
                query: "proxy".into(),
                limit: 1,
                ..SearchRequest::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!((window.total, window.hits.len()), (2, 1));
        assert_eq!(window.facets.unwrap().kev, 1);
    }

    #[test]
    fn filters_narrow_and_offsets_page() {
        let (_dir, index) = index();
        let kev = page(
            &index,
            SearchRequest {
                kev: Some(true),
                channel: Some("stable".into()),
                ..SearchRequest::default()
            },
        );
        assert_eq!(ids(&kev), ["CVE-2024-0003"]);
        let pypi = page(
            &index,
            SearchRequest {
                ecosystem: Some("PyPI".into()),
                ..SearchRequest::default()
            },
        );
        assert_eq!(pypi.total, 2);
        let second = page(
            &index,
            SearchRequest {
                ecosystem: Some("PyPI".into()),
                offset: 1,
                ..SearchRequest::default()
            },
        );
        assert_eq!(second.hits.len(), 1);
        assert_ne!(second.hits[0].hit.id, pypi.hits[0].hit.id);
    }

    #[test]
    fn ids_aliases_related_packages_and_words_are_found() {
        let (_dir, index) = index();
        let query = |q: &str| SearchRequest {
            query: q.into(),
            ..SearchRequest::default()
        };
        assert_eq!(
            ids(&page(&index, query("CVE-2024-0002"))),
            ["CVE-2024-0002"]
        );
        assert_eq!(
            ids(&page(&index, query("CVE-2024-0001"))),
            ["GHSA-aaaa-bbbb-cccc"]
        );
        let related = page(&index, query("DSA-5500-1"));
        assert_eq!(ids(&related), ["CVE-2024-0003"]);
        // Scored from its vector alone.
        assert_eq!(related.hits[0].hit.cvss, 9.8);
        assert_eq!(
            ids(&page(&index, query("cvss:[9 TO 10]"))),
            ["CVE-2024-0003"]
        );
        assert_eq!(ids(&page(&index, query("urllib3"))), ["CVE-2024-0002"]);
        // Every word must match.
        let found = page(&index, query("proxy credentials"));
        assert_eq!(ids(&found), ["CVE-2024-0002"]);
        let snippet = &found.hits[0].snippet;
        assert!(
            snippet.iter().any(|p| p.matched && p.text == "credentials"),
            "{snippet:?}"
        );
    }

    #[test]
    fn query_problems_are_returned_not_guessed() {
        let (_dir, index) = index();
        let problem = |q: &str| {
            index
                .search_page(&SearchRequest {
                    query: q.into(),
                    limit: 10,
                    ..SearchRequest::default()
                })
                .unwrap()
                .unwrap_err()
        };
        assert_eq!(
            problem("note: overflow"),
            QueryProblem::UnknownField {
                field: "note".into()
            }
        );
        assert!(matches!(
            problem("kev:yes"),
            QueryProblem::NotANumber { .. }
        ));
        assert!(matches!(problem("(overflow"), QueryProblem::Syntax { .. }));
        // The lenient API keeps retrying as words.
        assert_eq!(index.search("note: overflow", 10).unwrap().total, 1);
    }
}

//! Benchmark: server-side time of `GET /console/advisories?q=…` through the whole router
//! (session check, tantivy query with filters, facet counts over every match, snippets,
//! template), ranked or sorted by CVSS, on a large generation, against baselines in the same
//! run: the API's plain `Generation::search` (top 50 and a count, no facets or snippets) and the
//! console's `Generation::search_page` without the router and template.
//!
//! The generation is synthetic: 50,000 advisories (45,000 on channel `stable`, 5,000 on
//! `vendor`) in six ecosystems, summaries drawn from a fixed vocabulary, 5 % in KEV, loaded as two
//! signed kits through the ordinary import. With `STELLA_BENCH_KITS=DIR` holding the output of
//! `tests/full-corpus-kits DIR` (the whole `../shared/data` corpus, about 27,000 advisories), that
//! kit is loaded instead. Run with
//! `cargo bench -p stella-web --bench advisory_search -- --sample-size 10`; figures in
//! `docs/console.md` (Benchmarks, "Advisory search page").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::T0;
use criterion::Criterion;
use stella_feeds::{Generation, ImportOptions, ImportOutcome, SearchOrder, SearchRequest};
use stella_importer::model::{Affected, KevFlag, Severity};
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::writer::{KitContents, KitParams, write_kit};
use stella_importer::{Advisory, Limits, SigningKey, TrustedKeys};
use stella_web::AppState;

const ADVISORIES: usize = 50_000;
const ECOSYSTEMS: [&str; 6] = ["PyPI", "npm", "Go", "crates.io", "Debian", "Alpine"];
const WORDS: [&str; 40] = [
    "remote",
    "code",
    "execution",
    "denial",
    "service",
    "buffer",
    "overflow",
    "heap",
    "use",
    "after",
    "free",
    "crafted",
    "request",
    "header",
    "injection",
    "path",
    "traversal",
    "cross",
    "site",
    "scripting",
    "sql",
    "deserialization",
    "untrusted",
    "data",
    "memory",
    "exhaustion",
    "integer",
    "underflow",
    "certificate",
    "validation",
    "bypass",
    "authentication",
    "token",
    "leak",
    "credentials",
    "proxy",
    "redirect",
    "regular",
    "expression",
    "parser",
];
const PACKAGES: [&str; 12] = [
    "openssl",
    "requests",
    "urllib3",
    "lodash",
    "express",
    "golang.org/x/net",
    "tokio",
    "hyper",
    "glibc",
    "curl",
    "busybox",
    "zlib",
];

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn advisory(i: usize, rng: &mut Lcg) -> Advisory {
    let mut advisory = Advisory::new(
        format!("CVE-{}-{:05}", 2015 + i % 10, i),
        format!("osv:{i}"),
    );
    advisory.aliases.insert(format!("GHSA-{i:04x}-bnch-mark"));
    let summary: Vec<&str> = (0..8).map(|_| WORDS[rng.next(WORDS.len())]).collect();
    advisory.summary = Some(summary.join(" "));
    let details: Vec<&str> = (0..40).map(|_| WORDS[rng.next(WORDS.len())]).collect();
    advisory.details = Some(details.join(" "));
    for _ in 0..=rng.next(2) {
        let ecosystem = ECOSYSTEMS[rng.next(ECOSYSTEMS.len())];
        let package = format!("{}-{}", PACKAGES[rng.next(PACKAGES.len())], rng.next(400));
        advisory.affected.push(Affected {
            ecosystem: ecosystem.into(),
            package,
            purl: None,
            ranges: Vec::new(),
            requirements: Vec::new(),
            versions: Vec::new(),
            fixed: vec![format!("{}.{}.{}", rng.next(5), rng.next(20), rng.next(50))],
            distro: Vec::new(),
            source: format!("osv:{i}"),
        });
    }
    advisory.severities.push(Severity {
        kind: "CVSS_V3".into(),
        vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
        score: Some(rng.next(100) as f64 / 10.0),
        source: format!("osv:{i}"),
    });
    if i.is_multiple_of(20) {
        advisory.kev = Some(KevFlag {
            date_added: "2024-01-01".into(),
            due_date: None,
            ransomware: None,
        });
    }
    advisory
}

fn import(state: &AppState, kit: &[u8], trusted: &TrustedKeys) {
    let options = ImportOptions {
        trusted_keys: trusted.clone(),
        limits: Limits::default(),
        dry_run: false,
        audit_dry_run: false,
        actor: "bench".into(),
        origin: "bench.kit".into(),
        request_id: None,
        quarantine_dir: None,
    };
    let outcome = state
        .feeds()
        .import(
            &state.stores().catalog,
            kit,
            &options,
            state.clock().as_ref(),
        )
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Loaded(_)), "{outcome:?}");
}

/// Loads the full-corpus kit from `STELLA_BENCH_KITS`, or builds and loads the synthetic kits.
/// Returns what was loaded, for the report.
fn load(state: &AppState) -> String {
    if let Ok(dir) = std::env::var("STELLA_BENCH_KITS") {
        let dir = std::path::Path::new(&dir);
        let public = std::fs::read_to_string(dir.join("kit.pub")).unwrap();
        let trusted = TrustedKeys::from_texts([public.as_str()]).unwrap();
        import(
            state,
            &std::fs::read(dir.join("kit-2.tar.zst")).unwrap(),
            &trusted,
        );
        return format!("full corpus kit from {}", dir.display());
    }
    let pair = generate_key_pair(KeyProtection::Unencrypted, "bench").unwrap();
    let key = SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap();
    let trusted = TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap();
    let mut rng = Lcg(7);
    let mut all: Vec<Advisory> = (0..ADVISORIES).map(|i| advisory(i, &mut rng)).collect();
    let vendor = all.split_off(ADVISORIES * 9 / 10);
    for (channel, advisories) in [("stable", all), ("vendor", vendor)] {
        let created = time::OffsetDateTime::from_unix_timestamp(T0 as i64 - 3600).unwrap();
        let params = KitParams {
            channel: channel.into(),
            sequence: 1,
            created,
            expires: created + time::Duration::days(30),
            base: None,
            sources: Vec::new(),
        };
        let contents = KitContents {
            advisories,
            ..KitContents::default()
        };
        let built = write_kit(&contents, &params, &key).unwrap();
        import(state, &built.archive, &trusted);
    }
    format!("synthetic generation of {ADVISORIES} advisories")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(dir.path());
    let started = std::time::Instant::now();
    let loaded = load(&state);
    let generation: Arc<Generation> = state.feeds().current().unwrap();
    eprintln!(
        "advisory_search: {loaded}: {} advisories indexed, loaded in {:.1} s",
        generation.indexed(),
        started.elapsed().as_secs_f64()
    );
    let cookie = common::viewer_cookie(state.stores());
    let router = stella_web::router(state.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // A free-text query matching a large share of the corpus, a package query, an id (of the
    // best hit for the words, so it exists in either corpus), and the unfiltered list with a KEV
    // filter.
    let first = generation
        .search_page(&SearchRequest {
            query: "remote code execution".into(),
            limit: 1,
            ..SearchRequest::default()
        })
        .unwrap()
        .unwrap();
    let id = first.hits[0].hit.id.clone();
    let by_severity = SearchOrder::Severity { descending: true };
    for (name, q, filters, kev, order) in [
        (
            "words",
            "remote code execution",
            "",
            None,
            SearchOrder::Relevance,
        ),
        ("package", "openssl", "", None, SearchOrder::Relevance),
        ("id", id.as_str(), "", None, SearchOrder::Relevance),
        (
            "all-kev",
            "",
            "&kev=yes",
            Some(true),
            SearchOrder::Relevance,
        ),
        // The same words sorted by CVSS: the window is cut from the sorted whole (fast fields).
        (
            "words-by-cvss",
            "remote code execution",
            "&sort=-severity",
            None,
            by_severity,
        ),
    ] {
        let path = format!("/console/advisories?q={}{filters}", q.replace(' ', "+"));
        let request = SearchRequest {
            query: q.to_owned(),
            kev,
            order,
            limit: 50,
            ..SearchRequest::default()
        };
        let found = generation.search_page(&request).unwrap().unwrap();
        eprintln!(
            "advisory_search/{name} (q={q:?}{filters}): {} matches",
            found.total
        );
        let mut group = c.benchmark_group(format!("advisory_search/{name}"));
        group.bench_function("console page through the router", |b| {
            b.iter(|| runtime.block_on(common::get(&router, &cookie, black_box(&path))))
        });
        group.bench_function("Generation::search_page (facets, snippets)", |b| {
            b.iter(|| {
                generation
                    .search_page(black_box(&request))
                    .unwrap()
                    .unwrap()
            })
        });
        if !q.is_empty() {
            group.bench_function("baseline: Generation::search (top 50 + count)", |b| {
                b.iter(|| generation.search(black_box(q), 50).unwrap())
            });
        }
        group.finish();
    }
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);

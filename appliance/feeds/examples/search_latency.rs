//! Search latency over an imported data directory: `cargo run --release -p stella-feeds
//! --example search_latency -- DATA_DIR`. Runs a fixed mix of queries (ids, aliases, package
//! names, free text) and reports p50/p99 against a baseline measured in the same run: the
//! redb alias lookup of the same ids (the cheapest way to find an advisory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use stella_feeds::FeedStore;
use stella_store::Stores;

const QUERIES: &[&str] = &[
    "CVE-2021-44228",
    "log4j",
    "GHSA-jfh8-c2jp-5v3q",
    "requests",
    "django sql injection",
    "openssl",
    "remote code execution",
    "PYSEC-2021-335",
    "lodash prototype pollution",
    "urllib3 proxy",
    "RUSTSEC-2021-0078",
    "denial of service regular expression",
];

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .expect("usage: search_latency DATA_DIR");
    let data = std::path::Path::new(&data);
    let stores = Stores::open(data).unwrap();
    let feeds = FeedStore::open(data, &stores.catalog).unwrap();
    let generation = feeds.current().expect("no kit imported in DATA_DIR");
    let rounds = 50;
    let mut search = Vec::new();
    let mut lookup = Vec::new();
    for _ in 0..rounds {
        for query in QUERIES {
            let started = Instant::now();
            let results = generation.search(query, 20).unwrap();
            search.push(started.elapsed());
            std::hint::black_box(results);
            let started = Instant::now();
            let found = generation.advisories_by_alias(query).unwrap();
            lookup.push(started.elapsed());
            std::hint::black_box(found);
        }
    }
    let (s50, s99) = (percentile(&mut search, 0.5), percentile(&mut search, 0.99));
    let (l50, l99) = (percentile(&mut lookup, 0.5), percentile(&mut lookup, 0.99));
    println!(
        "advisories indexed: {}; {} searches",
        generation.indexed(),
        search.len()
    );
    println!("search  p50 {s50:?}  p99 {s99:?}  (target p99 <= 50 ms)");
    println!("lookup  p50 {l50:?}  p99 {l99:?}  (baseline: redb alias lookup)");
    println!(
        "ratio search/lookup: p50 {:.1}x  p99 {:.1}x",
        s50.as_secs_f64() / l50.as_secs_f64().max(1e-9),
        s99.as_secs_f64() / l99.as_secs_f64().max(1e-9)
    );
}

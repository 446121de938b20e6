//! Benchmark of the Authority's per-request cost, reported against a baseline measured in the
//! same run (a bare SHA-256 of the token, the least any validation must do): access-token
//! validation on a verified-token cache hit (target ≤ 50 µs) and on a miss (signature
//! verification), DPoP proof verification (always a miss: proofs are single-use), and token
//! issuance rate. Run with `cargo bench -p stella-authority`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use stella_authority::{
    DpopKey, DpopLimits, DpopRequest, DpopVerifier, NonceMode, Scope, ScopeSet, SoftwareSigner,
    TokenIssuer, TokenLifetime,
};
use stella_core::{Clock, SystemClock};

/// Runs `f` `iterations` times and returns the mean time per call.
fn time(iterations: u32, mut f: impl FnMut()) -> Duration {
    // Warm-up.
    for _ in 0..iterations.min(100) {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let issuer = TokenIssuer::new(
        Arc::new(SoftwareSigner::generate()?),
        "https://stella.bench",
        "stella-api",
        TokenLifetime::default(),
        clock.clone(),
    );
    let key = DpopKey::generate()?;
    let scopes = ScopeSet::new([Scope::ScannerRead, Scope::ScannerScan]);
    let token = issuer
        .issue("bench", &scopes, Some(key.thumbprint()))?
        .access_token;
    let other = issuer
        .issue("bench", &scopes, Some(key.thumbprint()))?
        .access_token;

    let baseline = time(200_000, || {
        black_box(Sha256::digest(black_box(token.as_bytes())));
    });

    let validator = issuer.validator(10_000);
    validator.validate(&token)?;
    let hit = time(200_000, || {
        black_box(validator.validate(black_box(&token)).ok());
    });

    // Capacity 1 and two alternating tokens: every call misses and verifies the signature.
    let missing = issuer.validator(1);
    let mut flip = false;
    let miss = time(2_000, || {
        flip = !flip;
        let t = if flip { &token } else { &other };
        black_box(missing.validate(t).ok());
    });

    let verifier = DpopVerifier::new(
        DpopLimits {
            replay_capacity: 1_000_000,
            ..DpopLimits::default()
        },
        clock.clone(),
    )?;
    let url = "https://stella.bench/api/scans";
    let proofs: Vec<String> = (0..2_000)
        .map(|_| key.proof("GET", url, clock.now_unix(), Some(&token), None))
        .collect::<Result<_, _>>()?;
    let jkt = key.thumbprint();
    let mut next = proofs.iter();
    let dpop = time(1_900, || {
        if let Some(proof) = next.next() {
            let request = DpopRequest {
                method: "GET",
                url,
                access_token: Some(&token),
                expected_jkt: Some(&jkt),
                nonce: NonceMode::NotRequired,
            };
            black_box(verifier.verify(proof, &request).ok());
        }
    });

    let issue = time(2_000, || {
        black_box(issuer.issue("bench", &scopes, Some(jkt.clone())).ok());
    });

    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "baseline sha256(token), {} bytes: {baseline:?}/op",
        token.len()
    );
    println!(
        "token validation, cache hit:       {hit:?}/op = {:.1}x baseline (target <= 50 us: {})",
        ratio(hit),
        if hit <= Duration::from_micros(50) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "token validation, cache miss:      {miss:?}/op = {:.1}x baseline (ES256 verify)",
        ratio(miss)
    );
    println!(
        "DPoP proof verification:           {dpop:?}/op = {:.1}x baseline (ES256 verify, replay cache)",
        ratio(dpop)
    );
    println!(
        "token issuance:                    {issue:?}/op = {:.1}x baseline = {:.0} tokens/s",
        ratio(issue),
        1.0 / issue.as_secs_f64()
    );
    Ok(())
}

//! Fuzz target: the decider's CycloneDX SBOM reader (`stella report`, `POST /api/reports`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_decide::components_from_cyclonedx(data, &stella_decide::SbomLimits::default());
});

//! Scanner: image intake, layer filesystem, analyzers, SBOM composition.

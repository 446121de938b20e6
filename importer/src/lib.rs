//! The offline-kit contract: format, content model, verification and loading.

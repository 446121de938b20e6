//! Key sources that hand out signers; the only crate that touches key material.

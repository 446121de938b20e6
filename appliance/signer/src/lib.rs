//! Signer: in-toto statements, DSSE envelopes, short-lived certificates, entitlement gate.

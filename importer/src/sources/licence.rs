//! Vendor licence documents, revocation lists and kit-key updates as kit sources (checked for shape here; the
//! appliance verifies the vendor signature against its configured vendor keys).

use super::Parsed;
use crate::licence::{SignedLicence, SignedRevocationList};

pub fn parse_licence(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    match SignedLicence::parse(bytes)
        .map_err(|e| e.to_string())
        .and_then(|licence| licence.validate().map(|()| licence))
    {
        Ok(licence) => parsed.licences.push(licence),
        Err(reason) => parsed.error(origin, None, reason),
    }
    parsed
}

pub fn parse_revocations(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    match SignedRevocationList::parse(bytes)
        .map_err(|e| e.to_string())
        .and_then(|list| list.validate().map(|()| list))
    {
        Ok(list) => parsed.revocations.push(list),
        Err(reason) => parsed.error(origin, None, reason),
    }
    parsed
}

pub fn parse_key_update(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    match crate::keyupdate::SignedKeyUpdate::parse(bytes)
        .map_err(|e| e.to_string())
        .and_then(|update| update.validate().map(|()| update))
    {
        Ok(update) => parsed.key_updates.push(update),
        Err(reason) => parsed.error(origin, None, reason),
    }
    parsed
}

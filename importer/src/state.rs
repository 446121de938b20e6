//! The reference meaning of a kit sequence: the state a store must hold after applying full and
//! delta kits, and the delta computation the builder uses. Stores are checked against this.

use std::collections::BTreeMap;

use crate::error::KitError;
use crate::keyupdate::SignedKeyUpdate;
use crate::licence::{SignedLicence, SignedRevocationList};
use crate::manifest::{ContentKind, KitKind};
use crate::model::{Advisory, EpssEntry, KevEntry};
use crate::verify::VerifiedKit;
use crate::vex::VexClaim;
use crate::writer::{KitContents, RemovedKey};

/// Everything the appliance knows from kits on one channel, keyed by record identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KitState {
    pub advisories: BTreeMap<String, Advisory>,
    pub vex_claims: BTreeMap<String, VexClaim>,
    pub kev: BTreeMap<String, KevEntry>,
    pub epss: BTreeMap<String, EpssEntry>,
    pub licences: BTreeMap<String, SignedLicence>,
    pub revocations: BTreeMap<String, SignedRevocationList>,
    pub key_updates: BTreeMap<String, SignedKeyUpdate>,
}

fn revocation_key(list: &SignedRevocationList) -> String {
    format!("{:020}", list.list.sequence)
}

impl KitState {
    /// The state a full kit with `contents` produces.
    pub fn from_contents(contents: &KitContents) -> Self {
        let mut state = KitState::default();
        state.upsert(contents.clone());
        state
    }

    /// Moves every record of `contents` into the state (records are large: never copied here).
    fn upsert(&mut self, contents: KitContents) {
        for mut advisory in contents.advisories {
            advisory.normalize();
            self.advisories.insert(advisory.id.clone(), advisory);
        }
        for claim in contents.vex_claims {
            self.vex_claims.insert(claim.key(), claim);
        }
        for entry in contents.kev {
            self.kev.insert(entry.cve.clone(), entry);
        }
        for entry in contents.epss {
            self.epss.insert(entry.cve.clone(), entry);
        }
        for licence in contents.licences {
            self.licences
                .insert(licence.licence.licence_id.clone(), licence);
        }
        for list in contents.revocations {
            self.revocations.insert(revocation_key(&list), list);
        }
        for update in contents.key_updates {
            self.key_updates
                .insert(format!("{:020}", update.update.sequence), update);
        }
    }

    fn remove(&mut self, removed: &RemovedKey) -> Result<(), KitError> {
        let gone = match removed.kind {
            ContentKind::Advisories => self.advisories.remove(&removed.key).is_some(),
            ContentKind::VexClaims => self.vex_claims.remove(&removed.key).is_some(),
            ContentKind::Kev => self.kev.remove(&removed.key).is_some(),
            ContentKind::Epss => self.epss.remove(&removed.key).is_some(),
            ContentKind::Licences => self.licences.remove(&removed.key).is_some(),
            ContentKind::Revocations => self.revocations.remove(&removed.key).is_some(),
            ContentKind::KeyUpdates => self.key_updates.remove(&removed.key).is_some(),
            ContentKind::Removed => false,
        };
        if gone {
            Ok(())
        } else {
            Err(KitError::BaseMismatch(format!(
                "delta removes {:?} {:?}, which the state does not hold",
                removed.kind, removed.key
            )))
        }
    }

    /// Applies a verified kit: a full kit replaces the state, a delta kit upserts and removes.
    pub fn apply(&mut self, kit: &VerifiedKit) -> Result<(), KitError> {
        let contents = KitContents {
            advisories: kit.advisories.clone(),
            vex_claims: kit.vex_claims.clone(),
            kev: kit.kev.clone(),
            epss: kit.epss.clone(),
            licences: kit.licences.clone(),
            revocations: kit.revocations.clone(),
            key_updates: kit.key_updates.clone(),
            removed: kit.removed.clone(),
        };
        self.apply_contents(kit.manifest.kind, contents)
    }

    /// Like [`KitState::apply`], but moves the records out of `kit` (its manifest stays), so a
    /// large kit is held in memory once, not twice.
    pub fn apply_taking(&mut self, kit: &mut VerifiedKit) -> Result<(), KitError> {
        let contents = KitContents {
            advisories: std::mem::take(&mut kit.advisories),
            vex_claims: std::mem::take(&mut kit.vex_claims),
            kev: std::mem::take(&mut kit.kev),
            epss: std::mem::take(&mut kit.epss),
            licences: std::mem::take(&mut kit.licences),
            revocations: std::mem::take(&mut kit.revocations),
            key_updates: std::mem::take(&mut kit.key_updates),
            removed: std::mem::take(&mut kit.removed),
        };
        self.apply_contents(kit.manifest.kind, contents)
    }

    fn apply_contents(&mut self, kind: KitKind, contents: KitContents) -> Result<(), KitError> {
        match kind {
            KitKind::Full => {
                *self = KitState::default();
                self.upsert(contents);
            }
            KitKind::Delta => {
                for removed in &contents.removed {
                    self.remove(removed)?;
                }
                self.upsert(contents);
            }
        }
        Ok(())
    }

    /// The delta that turns `self` (the base kit's state) into `target`: records new or changed in
    /// `target`, and keys present only in `self`.
    pub fn delta_to(&self, target: &KitState) -> KitContents {
        fn diff<T: PartialEq + Clone>(
            kind: ContentKind,
            base: &BTreeMap<String, T>,
            target: &BTreeMap<String, T>,
            changed: &mut Vec<T>,
            removed: &mut Vec<RemovedKey>,
        ) {
            for (key, record) in target {
                if base.get(key) != Some(record) {
                    changed.push(record.clone());
                }
            }
            for key in base.keys() {
                if !target.contains_key(key) {
                    removed.push(RemovedKey {
                        kind,
                        key: key.clone(),
                    });
                }
            }
        }
        let mut delta = KitContents::default();
        diff(
            ContentKind::Advisories,
            &self.advisories,
            &target.advisories,
            &mut delta.advisories,
            &mut delta.removed,
        );
        diff(
            ContentKind::VexClaims,
            &self.vex_claims,
            &target.vex_claims,
            &mut delta.vex_claims,
            &mut delta.removed,
        );
        diff(
            ContentKind::Kev,
            &self.kev,
            &target.kev,
            &mut delta.kev,
            &mut delta.removed,
        );
        diff(
            ContentKind::Epss,
            &self.epss,
            &target.epss,
            &mut delta.epss,
            &mut delta.removed,
        );
        diff(
            ContentKind::Licences,
            &self.licences,
            &target.licences,
            &mut delta.licences,
            &mut delta.removed,
        );
        diff(
            ContentKind::Revocations,
            &self.revocations,
            &target.revocations,
            &mut delta.revocations,
            &mut delta.removed,
        );
        diff(
            ContentKind::KeyUpdates,
            &self.key_updates,
            &target.key_updates,
            &mut delta.key_updates,
            &mut delta.removed,
        );
        delta.sort();
        delta
    }
}

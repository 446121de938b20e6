//! The console's staged kits. An upload that verified waits in `DATA_DIR/staging/` as
//! `ID.kit` beside `ID.json` (the uploaded file's name, who uploaded it, when) until an operator
//! loads it; `ID` is 32 random lowercase hex digits, the only form a load accepts. A staged kit
//! is removed when a load reaches a verdict (loaded, already imported or refused), and at each
//! upload the ones older than [`MAX_AGE_SECS`] are swept, as are all but the newest
//! [`MAX_STAGED`]` - 1`: the staging area holds at most [`MAX_STAGED`] kits, each within the
//! upload limit (`[kits] max_kit_bytes`). A staged kit is never trusted: loading verifies it
//! again.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How long a verified upload waits to be loaded: an hour.
pub(crate) const MAX_AGE_SECS: u64 = 3600;
/// The most kits staged at once.
pub(crate) const MAX_STAGED: usize = 4;

/// The staging directory under the data directory.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("staging")
}

/// What is known of a staged kit besides its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Staged {
    /// The uploaded file's name (the uploader's text).
    pub origin: String,
    /// Who uploaded it.
    pub actor: String,
    /// When it was staged (Unix seconds, the appliance clock).
    pub staged_at: u64,
}

impl Staged {
    fn expired(&self, now: u64) -> bool {
        now >= self.staged_at.saturating_add(MAX_AGE_SECS)
    }
}

/// A staged kit's id: 32 lowercase hex digits, so it never names a path outside the staging
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StagedId(String);

impl StagedId {
    /// The id in `text`, if `text` has the form of one.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        (text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(text.to_owned()))
    }

    fn random() -> io::Result<Self> {
        let bytes = stella_authority::random_bytes::<16>().map_err(io::Error::other)?;
        Ok(Self(hex::encode(bytes)))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn kit(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.kit", self.0))
    }

    fn meta(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.json", self.0))
    }
}

/// Why a staged kit cannot be read.
#[derive(Debug)]
pub(crate) enum Missing {
    /// No kit is staged under this id (loaded already, swept, or never staged).
    Gone,
    /// It was staged more than [`MAX_AGE_SECS`] ago; it has been removed now.
    Expired,
    /// The staging directory could not be read.
    Io(io::Error),
}

/// Stages `bytes` (verified just now) after sweeping expired and surplus kits; returns the id.
pub(crate) fn stage(dir: &Path, bytes: &[u8], staged: &Staged) -> io::Result<StagedId> {
    std::fs::create_dir_all(dir)?;
    sweep(dir, staged.staged_at, MAX_STAGED - 1)?;
    let id = StagedId::random()?;
    // The description first: a sweep meanwhile keeps a kit that has one.
    let meta = serde_json::to_vec(staged).map_err(io::Error::other)?;
    std::fs::write(id.meta(dir), meta)?;
    let partial = dir.join(format!("{}.partial", id.0));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, id.kit(dir))?;
    Ok(id)
}

/// Reads the kit staged under `id`; an expired one is removed and reported as such.
pub(crate) fn read(dir: &Path, id: &StagedId, now: u64) -> Result<(Vec<u8>, Staged), Missing> {
    let meta = match std::fs::read(id.meta(dir)) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Missing::Gone),
        Err(e) => return Err(Missing::Io(e)),
    };
    let Ok(staged) = serde_json::from_slice::<Staged>(&meta) else {
        remove(dir, id);
        return Err(Missing::Gone);
    };
    if staged.expired(now) {
        remove(dir, id);
        return Err(Missing::Expired);
    }
    match std::fs::read(id.kit(dir)) {
        Ok(bytes) => Ok((bytes, staged)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Missing::Gone),
        Err(e) => Err(Missing::Io(e)),
    }
}

/// Removes the kit staged under `id` (a failure is logged: the next sweep retries).
pub(crate) fn remove(dir: &Path, id: &StagedId) {
    for path in [id.kit(dir), id.meta(dir)] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a staged kit");
        }
    }
}

/// Removes every staged kit older than [`MAX_AGE_SECS`], all but the newest `keep`, and any file
/// that belongs to no described kit.
fn sweep(dir: &Path, now: u64, keep: usize) -> io::Result<()> {
    let mut live: Vec<(u64, String)> = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        if name.ends_with(".json")
            && let Some(staged) = std::fs::read(&path)
                .ok()
                .and_then(|m| serde_json::from_slice::<Staged>(&m).ok())
            && !staged.expired(now)
        {
            live.push((staged.staged_at, stem.clone()));
        }
        files.push((stem, path));
    }
    live.sort_by(|a, b| b.cmp(a));
    live.truncate(keep);
    for (stem, path) in files {
        if !live.iter().any(|(_, kept)| *kept == stem) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(at: u64) -> Staged {
        Staged {
            origin: "kit.tar.zst".into(),
            actor: "opal".into(),
            staged_at: at,
        }
    }

    #[test]
    fn ids_are_hex_and_nothing_else() {
        let id = StagedId::random().unwrap();
        assert_eq!(StagedId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "../x",
            "../../../../etc/passwd",
            "0123456789abcdef0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef/123456789abcdef",
        ] {
            assert_eq!(StagedId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn staged_kits_expire_and_are_bounded_in_number() {
        let data = tempfile::tempdir().unwrap();
        let dir = dir(data.path());
        let first = stage(&dir, b"one", &staged(100)).unwrap();
        assert_eq!(read(&dir, &first, 100).unwrap().0, b"one");
        assert!(matches!(
            read(&dir, &first, 100 + MAX_AGE_SECS),
            Err(Missing::Expired)
        ));
        assert!(matches!(read(&dir, &first, 100), Err(Missing::Gone)));
        std::fs::write(dir.join("stray.partial"), b"left by a crash").unwrap();
        let ids: Vec<StagedId> = (0..MAX_STAGED as u64 + 2)
            .map(|n| stage(&dir, b"kit", &staged(200 + n)).unwrap())
            .collect();
        // Two files per kit, the oldest swept, the stray file with them.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2 * MAX_STAGED);
        assert!(matches!(read(&dir, &ids[0], 300), Err(Missing::Gone)));
        assert!(read(&dir, &ids[MAX_STAGED + 1], 300).is_ok());
        remove(&dir, &ids[MAX_STAGED + 1]);
        assert!(matches!(
            read(&dir, &ids[MAX_STAGED + 1], 300),
            Err(Missing::Gone)
        ));
    }
}

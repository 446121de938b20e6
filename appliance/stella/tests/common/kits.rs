//! Signed kits for end-to-end tests, built with the kit contract's own writer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use stella_importer::manifest::KitBase;
use stella_importer::model::Affected;
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::writer::{BuiltKit, KitContents, KitParams, write_kit};
use stella_importer::{Advisory, SigningKey};
use time::OffsetDateTime;

/// A kit signing key and its public key file.
pub struct KitKey {
    pub key: SigningKey,
    pub pub_file: PathBuf,
}

impl KitKey {
    /// Generates a key and writes `dir/NAME.pub`.
    pub fn new(dir: &Path, name: &str) -> KitKey {
        let pair = generate_key_pair(KeyProtection::Unencrypted, name).unwrap();
        let pub_file = dir.join(format!("{name}.pub"));
        std::fs::write(&pub_file, &pair.public_key_file).unwrap();
        KitKey {
            key: SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap(),
            pub_file,
        }
    }
}

pub fn advisory(id: &str, package: &str, summary: &str) -> Advisory {
    let mut advisory = Advisory::new(id, format!("osv:{id}"));
    advisory.summary = Some(summary.to_owned());
    advisory.affected.push(Affected {
        ecosystem: "PyPI".into(),
        package: package.into(),
        purl: Some(format!("pkg:pypi/{package}")),
        ranges: Vec::new(),
        requirements: Vec::new(),
        versions: vec!["1.0".into()],
        fixed: vec!["1.1".into()],
        distro: Vec::new(),
        source: format!("osv:{id}"),
    });
    advisory
}

pub fn sample_contents() -> KitContents {
    KitContents {
        advisories: vec![
            advisory("CVE-2024-1001", "requests", "Header injection in requests"),
            advisory(
                "CVE-2024-1002",
                "urllib3",
                "Proxy credentials leak in urllib3",
            ),
        ],
        ..KitContents::default()
    }
}

/// A kit on channel `stable` built `age_days` ago, valid for `valid_days` from then.
pub fn build(
    key: &KitKey,
    contents: &KitContents,
    sequence: u64,
    age_days: i64,
    valid_days: i64,
    base: Option<&BuiltKit>,
) -> BuiltKit {
    let created =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::days(age_days);
    let params = KitParams {
        channel: "stable".into(),
        sequence,
        created,
        expires: created + time::Duration::days(valid_days),
        base: base.map(|b| KitBase {
            kit_id: b.manifest.kit_id.clone(),
            sequence: b.manifest.sequence,
            manifest_sha256: b.manifest_sha256.clone(),
        }),
        sources: Vec::new(),
    };
    write_kit(contents, &params, &key.key).unwrap()
}

/// Writes `kit` to `dir/NAME` and returns the path.
pub fn save(dir: &Path, name: &str, kit: &BuiltKit) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &kit.archive).unwrap();
    path
}

/// A config file trusting `keys`, with extra TOML appended to `[kits]`.
pub fn config(dir: &Path, keys: &[&KitKey], extra_kits: &str) -> PathBuf {
    let list: Vec<String> = keys
        .iter()
        .map(|k| format!("{:?}", k.pub_file.display().to_string()))
        .collect();
    let path = dir.join("stella.toml");
    std::fs::write(
        &path,
        format!("[kits]\ntrusted_keys = [{}]\n{extra_kits}", list.join(", ")),
    )
    .unwrap();
    path
}

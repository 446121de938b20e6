//! The appliance configuration: one TOML file, `STELLA_*` environment overrides, defaults that
//! let `stella serve` start with no file at all. Every key is documented in
//! `docs/configuration.md`; a test keeps that document and this file in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration. Unknown keys anywhere are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: where the HTTP API and console listen.
    pub server: ServerConfig,
    /// `[storage]`: where the embedded stores live.
    pub storage: StorageConfig,
    /// `[log]`: how the daemon logs.
    pub log: LogConfig,
    /// `[kits]`: which offline kits are trusted and how they arrive.
    pub kits: KitsConfig,
    /// `[tls]`: HTTPS for the API and console.
    pub tls: TlsConfig,
    /// `[auth]`: the local Authority (tokens, console accounts).
    pub auth: AuthConfig,
    /// `[hsm]`: where the signing keys live. Absent: the appliance scans and reports but signs
    /// nothing. The table is parsed (unknown keys rejected) by `stella-hsm`'s `HsmConfig`, the
    /// one crate that knows key sources; its keys are documented in `docs/hsm.md`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsm: Option<toml::Table>,
    /// `[licence]`: which vendor keys may sign licences, and this appliance's id.
    pub licence: LicenceConfig,
    /// `[signer]`: the identity in signing certificates and the release-integrity check.
    pub signer: SignerConfig,
}

/// `[licence]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LicenceConfig {
    /// Minisign public keys of the vendor trusted to sign licences and revocation lists: each
    /// entry is the key itself (the base64 line or the whole `.pub` text) or a path to a `.pub`.
    pub vendor_keys: Vec<String>,
    /// The appliance id written into enrolment requests; empty means the data directory's
    /// instance id.
    pub appliance_id: String,
}

/// How the signer treats the running binary's release signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseCheck {
    /// Verify `STELLA_BINARY.minisig` with `release_public_key` when one is set (default).
    #[default]
    Enforce,
    /// Development: skip the check and stamp every attestation with the override.
    DevOverride,
}

/// `[signer]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    /// Subject alternative name (URI) of the short-lived signing certificates: what
    /// `sigstore verify --cert-identity` is given.
    pub identity: String,
    /// OIDC issuer written into the signing certificates (`--cert-oidc-issuer`).
    pub oidc_issuer: String,
    /// Vendor release key (minisign base64 line, `.pub` text or path); empty: no check.
    pub release_public_key: String,
    /// `enforce` or `dev-override`.
    pub release_check: ReleaseCheck,
    /// Origin (name) of the transparency log; empty: `APPLIANCE_ID.stella-ops.local/log`.
    pub log_origin: String,
}

impl Default for SignerConfig {
    fn default() -> Self {
        Self {
            identity: "https://stella-ops.local/appliance".to_owned(),
            oidc_issuer: "https://stella-ops.local/oidc".to_owned(),
            release_public_key: String::new(),
            release_check: ReleaseCheck::Enforce,
            log_origin: String::new(),
        }
    }
}

/// Reads a key given inline or as a path to a file (the `vendor_keys` / `trusted_keys` form):
/// an existing file's text, else the value itself. A key line is base64 and never names an
/// existing file; a path does.
pub fn key_text(value: &str) -> std::io::Result<String> {
    let path = Path::new(value);
    if !value.contains('\n') && path.is_file() {
        return std::fs::read_to_string(path);
    }
    Ok(value.to_owned())
}

/// `[kits]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KitsConfig {
    /// Minisign public keys trusted to sign kits: each entry is the key itself (the base64 line
    /// of a `.pub` file, or the whole file's text) or a path to a `.pub` file.
    pub trusted_keys: Vec<String>,
    /// Days after a kit's `created` time at which its channel shows as stale (freeze attack).
    pub stale_after_days: u64,
    /// Largest kit accepted, in bytes, compressed.
    pub max_kit_bytes: u64,
    /// Largest total of a kit's decompressed content files, in bytes (decompression bombs).
    pub max_unpacked_bytes: u64,
    /// Directory watched for new kits (removable media); empty for none.
    pub watch_dir: PathBuf,
    /// Seconds between two looks at `watch_dir`.
    pub watch_interval_secs: u64,
    /// Where rejected kits are copied with their report; empty for `DATA_DIR/quarantine`.
    pub quarantine_dir: PathBuf,
}

impl Default for KitsConfig {
    fn default() -> Self {
        Self {
            trusted_keys: Vec::new(),
            stale_after_days: 7,
            max_kit_bytes: 1 << 30,
            max_unpacked_bytes: 2 << 30,
            watch_dir: PathBuf::new(),
            watch_interval_secs: 10,
            quarantine_dir: PathBuf::new(),
        }
    }
}

/// When the daemon serves HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// HTTPS when listening off loopback (mandatory there), plain HTTP on loopback.
    Auto,
    /// HTTPS always, loopback included.
    On,
}

/// `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `auto` or `on`. Plain HTTP is never served off loopback.
    pub mode: TlsMode,
    /// PEM certificate chain provided by the operator; with `key_file`. When both are unset, a
    /// self-signed certificate is made at first start in `DATA_DIR/tls/`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key matching `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the self-signed certificate.
    pub self_signed_names: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::Auto,
            cert_file: None,
            key_file: None,
            self_signed_names: Vec::new(),
        }
    }
}

/// `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Access-token lifetime in seconds; clamped to 120..=300.
    pub token_lifetime_secs: u64,
    /// Issuer URL (`iss`) of tokens; empty means the listening URL.
    pub issuer: String,
    /// Console session lifetime in seconds.
    pub session_lifetime_secs: u64,
    /// Whether clients may get bearer tokens (no DPoP proof) for routes that do not require
    /// DPoP. Off: every token is sender-constrained.
    pub allow_bearer_tokens: bool,
    /// Consecutive failed console logins that lock an account.
    pub lockout_after: u32,
    /// How long a locked account stays locked, seconds.
    pub lockout_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_lifetime_secs: 300,
            issuer: String::new(),
            session_lifetime_secs: 8 * 3600,
            allow_bearer_tokens: false,
            lockout_after: 5,
            lockout_secs: 900,
        }
    }
}

/// `[server]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port of the HTTP listener.
    pub listen: SocketAddr,
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_secs: 30,
        }
    }
}

/// `[storage]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The data directory holding every store. Relative paths are taken from the working
    /// directory of the daemon.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./var/stella"),
        }
    }
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (readable lines) or `json` (one JSON object per line).
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `stella_web=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a TTY).
    Human,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected \"human\" or \"json\""
            )),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown keys included).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// What the TOML parser said, including the offending key and position.
        message: String,
    },
    /// An environment override has a value that does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// The environment variables that override configuration keys, with the key each one sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("STELLA_DATA", "storage.data_dir"),
    ("STELLA_LISTEN", "server.listen"),
    ("STELLA_LOG_FORMAT", "log.format"),
    ("STELLA_LOG_LEVEL", "log.level"),
];

impl Config {
    /// Parses a configuration from TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })
    }

    /// Loads the file at `path` (or the defaults when there is none), then applies the
    /// `STELLA_*` overrides read through `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(&text, path)?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Applies the `STELLA_*` overrides listed in [`ENV_OVERRIDES`].
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(value) = env("STELLA_DATA") {
            self.storage.data_dir = PathBuf::from(value);
        }
        if let Some(value) = env("STELLA_LISTEN") {
            self.server.listen =
                value
                    .parse()
                    .map_err(|err: std::net::AddrParseError| ConfigError::Env {
                        name: "STELLA_LISTEN",
                        value: value.clone(),
                        reason: err.to_string(),
                    })?;
        }
        if let Some(value) = env("STELLA_LOG_FORMAT") {
            self.log.format = value.parse().map_err(|reason| ConfigError::Env {
                name: "STELLA_LOG_FORMAT",
                value: value.clone(),
                reason,
            })?;
        }
        if let Some(value) = env("STELLA_LOG_LEVEL") {
            self.log.level = value;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_need_no_file() {
        let config = Config::load(None, no_env).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.storage.data_dir, PathBuf::from("./var/stella"));
        assert_eq!(config.log.format, LogFormat::Human);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stella.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9\"\nlistne = 3\n").unwrap();
        let err = Config::load(Some(&path), no_env).unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn unknown_section_is_rejected() {
        let err = Config::from_toml("[sever]\nlisten = \"127.0.0.1:9\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sever"), "{err}");
    }

    #[test]
    fn file_values_then_env_overrides() {
        let config = Config::from_toml(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[storage]\ndata_dir = \"/srv/a\"\n[log]\nformat = \"json\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(config.log.format, LogFormat::Json);
        let mut config = config;
        config
            .apply_env(|name| match name {
                "STELLA_DATA" => Some("/srv/b".to_owned()),
                "STELLA_LISTEN" => Some("127.0.0.1:9100".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(config.server.listen.port(), 9100);
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn bad_env_value_is_named() {
        let err = Config::load(None, |name| {
            (name == "STELLA_LISTEN").then(|| "not-an-address".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("STELLA_LISTEN"), "{err}");
    }

    /// Every key of the configuration, and every environment override, is documented.
    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../../docs/configuration.md");
        let value = toml::Value::try_from(Config::default()).unwrap();
        let mut missing = Vec::new();
        if let toml::Value::Table(sections) = value {
            for (section, keys) in sections {
                assert!(
                    docs.contains(&format!("[{section}]")),
                    "[{section}] undocumented"
                );
                if let toml::Value::Table(keys) = keys {
                    for key in keys.keys() {
                        if !docs.contains(&format!("`{key}`")) {
                            missing.push(format!("{section}.{key}"));
                        }
                    }
                }
            }
        }
        for (name, _) in ENV_OVERRIDES {
            if !docs.contains(name) {
                missing.push((*name).to_owned());
            }
        }
        assert!(missing.is_empty(), "undocumented config keys: {missing:?}");
    }
}

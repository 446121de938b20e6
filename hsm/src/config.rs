//! The `[hsm]` section of the appliance TOML and the one function that turns it into a key source.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::yubi::YubiHsmConnector;
use crate::{
    FileKeySource, HsmError, KeySource, Pkcs11KeySource, Pkcs11Settings, SigningMode,
    YubiHsmKeySource, YubiHsmSettings,
};

/// Which backend holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A PKCS#11 module (`module`, `token`, `pin_file`).
    Pkcs11,
    /// A YubiHSM 2 (`connector`, `url` or `usb_serial`, `auth_key_id`, `pin_file`, `domain`).
    Yubihsm,
    /// Software keys in `key_dir`; only with `mode = "dev"`.
    File,
}

/// How to reach a YubiHSM 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YubiHsmConnectorKind {
    /// Through `yubihsm-connector` at `url`.
    Http,
    /// Directly over USB (needs the `yubihsm-usb` cargo feature).
    Usb,
}

/// The `[hsm]` configuration section. Every key is documented in `docs/hsm.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Which backend holds the keys.
    pub backend: BackendKind,
    /// `production` (default) or `dev`; `dev` is required for `backend = "file"`.
    #[serde(default)]
    pub mode: SigningMode,
    /// PKCS#11: path of the module (shared library).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// PKCS#11: token label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// PKCS#11 user PIN or YubiHSM authentication-key password, in a file (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// YubiHSM: `http` or `usb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<YubiHsmConnectorKind>,
    /// YubiHSM with `connector = "http"`: the connector URL, e.g. `http://127.0.0.1:12345`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// YubiHSM with `connector = "usb"`: serial number of the device to use (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb_serial: Option<String>,
    /// YubiHSM: object id of the authentication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_id: Option<u16>,
    /// YubiHSM: domain (1..=16) of the generated keys; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<u8>,
    /// File backend: directory of the development keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_dir: Option<PathBuf>,
}

fn required<'a, T>(value: &'a Option<T>, key: &str, backend: &str) -> Result<&'a T, HsmError> {
    value
        .as_ref()
        .ok_or_else(|| HsmError::Config(format!("backend = \"{backend}\" needs `{key}`")))
}

fn refuse(present: bool, key: &str, backend: &str) -> Result<(), HsmError> {
    if present {
        return Err(HsmError::Config(format!(
            "`{key}` does not apply to backend = \"{backend}\""
        )));
    }
    Ok(())
}

/// Reads a PIN or password file; one trailing newline (LF or CRLF) is not part of the secret.
fn read_secret(path: &Path) -> Result<String, HsmError> {
    let text = std::fs::read_to_string(path).map_err(|source| HsmError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let secret = text
        .strip_suffix('\n')
        .map(|text| text.strip_suffix('\r').unwrap_or(text))
        .unwrap_or(&text);
    if secret.is_empty() {
        return Err(HsmError::Config(format!(
            "PIN file {} is empty",
            path.display()
        )));
    }
    Ok(secret.to_owned())
}

/// Parses `http://host:port` (the only form `yubihsm-connector` serves).
fn parse_connector_url(url: &str) -> Result<(String, u16), HsmError> {
    let bad = |reason: &str| HsmError::Config(format!("url {url:?}: {reason}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("must start with http://"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("needs a port, e.g. http://127.0.0.1:12345"))?;
    if host.is_empty() || host.contains('/') {
        return Err(bad("needs a host and no path"));
    }
    let port = port
        .parse()
        .map_err(|_| bad("port is not a number in 1..=65535"))?;
    Ok((host.to_owned(), port))
}

impl HsmConfig {
    /// Checks that exactly the keys the backend needs are present; does no I/O.
    pub fn validate(&self) -> Result<(), HsmError> {
        match self.backend {
            BackendKind::Pkcs11 => {
                required(&self.module, "module", "pkcs11")?;
                required(&self.token, "token", "pkcs11")?;
                required(&self.pin_file, "pin_file", "pkcs11")?;
                let yubihsm_keys = self.connector.is_some()
                    || self.url.is_some()
                    || self.usb_serial.is_some()
                    || self.auth_key_id.is_some()
                    || self.domain.is_some();
                refuse(
                    yubihsm_keys,
                    "connector/url/usb_serial/auth_key_id/domain",
                    "pkcs11",
                )?;
                refuse(self.key_dir.is_some(), "key_dir", "pkcs11")
            }
            BackendKind::Yubihsm => {
                let connector = required(&self.connector, "connector", "yubihsm")?;
                required(&self.auth_key_id, "auth_key_id", "yubihsm")?;
                required(&self.pin_file, "pin_file", "yubihsm")?;
                match connector {
                    YubiHsmConnectorKind::Http => {
                        parse_connector_url(required(&self.url, "url", "yubihsm")?)?;
                        refuse(
                            self.usb_serial.is_some(),
                            "usb_serial",
                            "yubihsm with connector = \"http\"",
                        )?;
                    }
                    YubiHsmConnectorKind::Usb => refuse(
                        self.url.is_some(),
                        "url",
                        "yubihsm with connector = \"usb\"",
                    )?,
                }
                refuse(
                    self.module.is_some() || self.token.is_some(),
                    "module/token",
                    "yubihsm",
                )?;
                refuse(self.key_dir.is_some(), "key_dir", "yubihsm")
            }
            BackendKind::File => {
                if self.mode != SigningMode::Dev {
                    return Err(HsmError::DevModeRequired);
                }
                required(&self.key_dir, "key_dir", "file")?;
                let others = self.module.is_some()
                    || self.token.is_some()
                    || self.pin_file.is_some()
                    || self.connector.is_some()
                    || self.url.is_some()
                    || self.usb_serial.is_some()
                    || self.auth_key_id.is_some()
                    || self.domain.is_some();
                refuse(others, "HSM settings", "file")
            }
        }
    }
}

/// Opens the configured key source (reads the PIN file, loads the module, logs in).
pub fn open_key_source(config: &HsmConfig) -> Result<Box<dyn KeySource>, HsmError> {
    config.validate()?;
    match config.backend {
        BackendKind::Pkcs11 => {
            let settings = Pkcs11Settings {
                module: required(&config.module, "module", "pkcs11")?.clone(),
                token: required(&config.token, "token", "pkcs11")?.clone(),
                pin: read_secret(required(&config.pin_file, "pin_file", "pkcs11")?)?,
            };
            Ok(Box::new(Pkcs11KeySource::open(&settings)?))
        }
        BackendKind::Yubihsm => {
            let connector = match required(&config.connector, "connector", "yubihsm")? {
                YubiHsmConnectorKind::Http => {
                    let (host, port) =
                        parse_connector_url(required(&config.url, "url", "yubihsm")?)?;
                    YubiHsmConnector::Http { host, port }
                }
                YubiHsmConnectorKind::Usb => YubiHsmConnector::Usb {
                    serial: config.usb_serial.clone(),
                },
            };
            let settings = YubiHsmSettings {
                connector,
                auth_key_id: *required(&config.auth_key_id, "auth_key_id", "yubihsm")?,
                password: read_secret(required(&config.pin_file, "pin_file", "yubihsm")?)?,
                domain: config.domain.unwrap_or(1),
            };
            Ok(Box::new(YubiHsmKeySource::open(&settings)?))
        }
        BackendKind::File => Ok(Box::new(FileKeySource::open(
            required(&config.key_dir, "key_dir", "file")?,
            config.mode,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_urls_parse_or_name_the_problem() {
        assert_eq!(
            parse_connector_url("http://127.0.0.1:12345").unwrap(),
            ("127.0.0.1".to_owned(), 12345)
        );
        assert!(parse_connector_url("https://h:1").is_err());
        assert!(parse_connector_url("http://h").is_err());
        assert!(parse_connector_url("http://h:99999").is_err());
        assert!(parse_connector_url("http://h/x:1").is_err());
    }

    #[test]
    fn pin_file_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\r\n").unwrap();
        assert_eq!(read_secret(&path).unwrap(), "1234");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret(&path).is_err());
    }
}

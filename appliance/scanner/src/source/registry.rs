//! Registry source: pulls an image over the OCI Distribution v2 API (the
//! protocol of the CNCF distribution server, Harbor, Zot, ...) with anonymous,
//! basic or bearer-token authentication, over HTTPS, or plain HTTP when the
//! operator explicitly allows it for that registry.
//!
//! Like every source it only hands out bytes: digests and sizes are verified
//! by the caller. Blob bodies are streamed, never buffered whole.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use super::{ImageSource, SourceEntry};
use crate::digest::Digest;
use crate::error::ScanError;
use crate::image::MAX_DOCUMENT_BYTES;

/// Accept header for manifests: OCI and Docker, single and multi-platform.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Whether plain HTTP may be used. A security switch, so an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// HTTPS with certificate verification (the default).
    #[default]
    Https,
    /// Plain HTTP (`--insecure-registry`): only for registries the operator names.
    InsecureHttp,
}

/// Credentials for the registry (or its token service).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `registry/repository:tag` or `registry/repository@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]`.
    pub registry: String,
    /// Repository path (`team/app`).
    pub repository: String,
    /// Tag or digest.
    pub reference: Reference,
}

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag (mutable).
    Tag(String),
    /// A manifest digest (immutable; the fetched manifest is checked against it).
    Digest(Digest),
}

impl ImageReference {
    /// Parses `host[:port]/repo[/more]:tag` or `host[:port]/repo@sha256:...`. The
    /// registry host must be explicit (contain `.` or `:`, or be `localhost`):
    /// an air-gapped appliance has no implicit default registry.
    pub fn parse(text: &str) -> Result<ImageReference, ScanError> {
        let invalid = |reason: &str| ScanError::InvalidImage {
            what: format!("image reference {text:?}"),
            reason: reason.to_owned(),
        };
        let (registry, rest) = text
            .split_once('/')
            .ok_or_else(|| invalid("no registry host"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(invalid(
                "the registry host must be explicit (host.domain or host:port)",
            ));
        }
        let (repository, reference) = if let Some((repository, digest)) = rest.split_once('@') {
            (repository, Reference::Digest(Digest::parse(digest)?))
        } else {
            match rest.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => {
                    (repository, Reference::Tag(tag.to_owned()))
                }
                _ => (rest, Reference::Tag("latest".to_owned())),
            }
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !repository.split('/').all(component_ok) {
            return Err(invalid("repository must be lower-case path components"));
        }
        if let Reference::Tag(tag) = &reference
            && (tag.is_empty()
                || tag.len() > 128
                || !tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        {
            return Err(invalid("invalid tag"));
        }
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference,
        })
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.repository),
            Reference::Digest(digest) => {
                write!(f, "{}/{}@{digest}", self.registry, self.repository)
            }
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    // key="value" pairs; values may contain commas (scopes), so split on `",`.
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted.get(..end)?, quoted.get(end + 1..)?)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after.get(..end)?, after.get(end..)?)
        };
        match key {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start_matches(',').trim();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
                out.push(char::from(TABLE.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An image in a registry.
pub struct RegistrySource {
    reference: ImageReference,
    base_url: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    /// The `Authorization` header value in use, once a challenge was answered.
    authorization: Mutex<Option<String>>,
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySource")
            .field("reference", &self.reference)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RegistrySource {
    /// A source for `reference`; nothing is fetched until the scan asks.
    pub fn new(
        reference: ImageReference,
        transport: Transport,
        credentials: Option<Credentials>,
    ) -> RegistrySource {
        let scheme = match transport {
            Transport::Https => "https",
            Transport::InsecureHttp => "http",
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(transport == Transport::Https)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent("stella-scanner")
            // Blob bytes must arrive exactly as stored (their digest is checked):
            // never ask for a transfer Content-Encoding that ureq would undo.
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .build()
            .into();
        RegistrySource {
            base_url: format!(
                "{scheme}://{}/v2/{}",
                reference.registry, reference.repository
            ),
            reference,
            agent,
            credentials,
            authorization: Mutex::new(None),
        }
    }

    fn error(&self, reason: impl Into<String>) -> ScanError {
        ScanError::InvalidImage {
            what: format!("registry {}", self.reference),
            reason: reason.into(),
        }
    }

    fn current_authorization(&self) -> Option<String> {
        self.authorization.lock().ok().and_then(|a| a.clone())
    }

    /// GET `url`; on 401 answers the challenge once (basic, or a bearer token
    /// from the realm) and retries.
    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ScanError> {
        let send = |authorization: Option<&str>| {
            let mut request = self.agent.get(url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(authorization) = authorization {
                request = request.header("Authorization", authorization);
            }
            request
                .call()
                .map_err(|e| self.error(format!("GET {url}: {e}")))
        };
        let response = send(self.current_authorization().as_deref())?;
        if response.status() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(|| {
                self.error(format!(
                    "GET {url}: 401 without a usable WWW-Authenticate challenge"
                ))
            })?;
        let authorization = match challenge {
            Challenge::Basic => {
                let credentials = self.credentials.as_ref().ok_or_else(|| {
                    self.error("registry requires credentials (basic auth) and none were given")
                })?;
                format!(
                    "Basic {}",
                    base64_encode(
                        format!("{}:{}", credentials.username, credentials.password).as_bytes()
                    )
                )
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => format!("Bearer {}", self.fetch_token(&realm, service, scope)?),
        };
        if let Ok(mut slot) = self.authorization.lock() {
            *slot = Some(authorization.clone());
        }
        let response = send(Some(&authorization))?;
        if response.status() == 401 {
            return Err(self.error(format!(
                "GET {url}: still unauthorized after authenticating"
            )));
        }
        Ok(response)
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String, ScanError> {
        let scope =
            scope.unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { '&' } else { '?' },
            percent_encode(&scope)
        );
        if let Some(service) = service {
            url.push_str(&format!("&service={}", percent_encode(&service)));
        }
        let mut request = self.agent.get(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64_encode(
                        format!("{}:{}", credentials.username, credentials.password).as_bytes()
                    )
                ),
            );
        }
        let response = request
            .call()
            .map_err(|e| self.error(format!("token request to {realm}: {e}")))?;
        if response.status() != 200 {
            return Err(self.error(format!(
                "token service {realm} answered {}",
                response.status()
            )));
        }
        let body = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.error(format!("token response from {realm}: {e}")))?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("token response from {realm}: {e}")))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| self.error(format!("token response from {realm} has no token")))
    }

    fn expect_ok(
        &self,
        response: &ureq::http::Response<ureq::Body>,
        what: &str,
    ) -> Result<(), ScanError> {
        match response.status().as_u16() {
            200 => Ok(()),
            404 => Err(ScanError::BlobNotFound {
                digest: what.to_owned(),
                source_name: self.describe(),
            }),
            status => Err(self.error(format!("{what}: HTTP {status}"))),
        }
    }
}

impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        format!("registry:{}", self.reference)
    }

    fn entry(&self) -> Result<SourceEntry, ScanError> {
        let reference = match &self.reference.reference {
            Reference::Tag(tag) => tag.clone(),
            Reference::Digest(digest) => digest.to_string(),
        };
        let url = format!("{}/manifests/{reference}", self.base_url);
        let response = self.get(&url, Some(MANIFEST_ACCEPT))?;
        self.expect_ok(&response, &format!("manifest {reference}"))?;
        let bytes = response
            .into_body()
            .with_config()
            .limit(MAX_DOCUMENT_BYTES)
            .read_to_vec()
            .map_err(|e| self.error(format!("manifest {reference}: {e}")))?;
        let digest = Digest::of_bytes(&bytes);
        if let Reference::Digest(expected) = &self.reference.reference
            && *expected != digest
        {
            return Err(ScanError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok(SourceEntry::Oci {
            bytes,
            digest: Some(digest),
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ScanError> {
        // Child manifests of an index are fetched from the manifests endpoint;
        // the distribution spec serves them there (and usually as blobs too).
        let blob_url = format!("{}/blobs/{digest}", self.base_url);
        let response = self.get(&blob_url, None)?;
        if response.status() == 404 {
            let manifest_url = format!("{}/manifests/{digest}", self.base_url);
            let response = self.get(&manifest_url, Some(MANIFEST_ACCEPT))?;
            self.expect_ok(&response, digest.as_str())?;
            return Ok(Box::new(response.into_body().into_reader()));
        }
        self.expect_ok(&response, digest.as_str())?;
        Ok(Box::new(response.into_body().into_reader()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageReference::parse("registry.local:5000/team/app:1.2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.local:5000", "team/app")
        );
        assert_eq!(r.reference, Reference::Tag("1.2".into()));
        let d = format!("localhost/app@sha256:{}", "a".repeat(64));
        assert!(matches!(
            ImageReference::parse(&d).unwrap().reference,
            Reference::Digest(_)
        ));
        assert_eq!(
            ImageReference::parse("127.0.0.1:5000/app")
                .unwrap()
                .reference,
            Reference::Tag("latest".into())
        );
        assert!(
            ImageReference::parse("ubuntu:22.04").is_err(),
            "no implicit registry"
        );
        assert!(ImageReference::parse("r.local/App:1").is_err());
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.local/token",service="registry.local",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.local/token".into(),
                service: Some("registry.local".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge(r#"Bearer service="x""#),
            None,
            "realm is required"
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}

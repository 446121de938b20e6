//! `stella login` and the CLI's API client: client-credentials tokens bound to a DPoP key kept in
//! a 0600 file, cached and refreshed before they expire, and requests that carry a fresh DPoP
//! proof each (retrying once when the server asks for its nonce). Other subcommands use
//! [`ApiClient`]; `stella api METHOD PATH` is the generic one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use stella_authority::DpopKey;

/// Flags of `stella login`.
#[derive(clap::Args, Debug)]
pub(crate) struct LoginArgs {
    /// The appliance's base URL, e.g. https://stella.example:8443.
    #[arg(long, env = "STELLA_URL")]
    url: String,
    /// The OAuth client id an admin registered.
    #[arg(long, env = "STELLA_CLIENT_ID")]
    client_id: String,
    /// File holding the client secret (never passed on the command line).
    #[arg(long, env = "STELLA_CLIENT_SECRET_FILE", value_name = "FILE")]
    client_secret_file: PathBuf,
    /// Scopes to ask for (space-separated); default: every scope the client is allowed.
    #[arg(long)]
    scope: Option<String>,
    /// PEM certificate to trust for HTTPS (e.g. the appliance's self-signed certificate).
    #[arg(long, env = "STELLA_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Where the profile, token cache and DPoP key live.
    #[arg(long, env = "STELLA_CLI_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Flags of `stella api`.
#[derive(clap::Args, Debug)]
pub(crate) struct ApiArgs {
    /// HTTP method.
    method: String,
    /// Path on the appliance, e.g. /api/audit.
    path: String,
    /// JSON request body.
    #[arg(long)]
    json: Option<String>,
    /// Where `stella login` keeps its state.
    #[arg(long, env = "STELLA_CLI_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// What `stella login` remembers (no secret: only the path of the secret file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    url: String,
    client_id: String,
    client_secret_file: PathBuf,
    scope: Option<String>,
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedToken {
    access_token: String,
    token_type: String,
    expires_at: u64,
    scope: String,
}

/// Refresh when fewer than this many seconds are left.
const REFRESH_MARGIN_SECS: u64 = 30;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn default_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir {
        return Ok(dir);
    }
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(config).join("stella"));
    }
    let home =
        std::env::var_os("HOME").context("neither --dir, XDG_CONFIG_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".config").join("stella"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// An authenticated client of the appliance API.
pub(crate) struct ApiClient {
    dir: PathBuf,
    profile: Profile,
    key: DpopKey,
    agent: ureq::Agent,
    token: Option<CachedToken>,
    nonce: Option<String>,
}

impl ApiClient {
    fn new(dir: PathBuf, profile: Profile) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let key = DpopKey::load_or_create(&dir.join("dpop.pem"))?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)));
        if let Some(ca) = &profile.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let cert = ureq::tls::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        cert,
                    ])))
                    .build(),
            );
        }
        let token = std::fs::read_to_string(dir.join("token.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Ok(Self {
            dir,
            profile,
            key,
            agent: config.build().into(),
            token,
            nonce: None,
        })
    }

    /// The client `stella login` set up in `dir` (default: `~/.config/stella`).
    pub(crate) fn load(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = default_dir(dir)?;
        let path = dir.join("profile.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}; run `stella login` first", path.display()))?;
        let profile: Profile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a stella profile", path.display()))?;
        Self::new(dir, profile)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.profile.url.trim_end_matches('/'))
    }

    /// A valid access token, fetched anew when the cached one expires within 30 s.
    pub(crate) fn access_token(&mut self) -> anyhow::Result<String> {
        if let Some(token) = &self.token
            && token.expires_at > now() + REFRESH_MARGIN_SECS
        {
            return Ok(token.access_token.clone());
        }
        let secret_path = &self.profile.client_secret_file;
        let secret = std::fs::read_to_string(secret_path)
            .with_context(|| format!("cannot read client secret {}", secret_path.display()))?;
        let url = self.url("/oauth/token");
        let proof = self.key.proof("POST", &url, now(), None, None)?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.profile.client_id.clone()),
            ("client_secret", secret.trim().to_owned()),
        ];
        if let Some(scope) = &self.profile.scope {
            form.push(("scope", scope.clone()));
        }
        let mut response = self
            .agent
            .post(&url)
            .header("DPoP", &proof)
            .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("POST {url}: answer is not JSON ({status})"))?;
        if !status.is_success() {
            bail!(
                "token request refused ({status}): {} {}",
                body["error"].as_str().unwrap_or("?"),
                body["error_description"].as_str().unwrap_or("")
            );
        }
        let token = CachedToken {
            access_token: body["access_token"]
                .as_str()
                .context("no access_token")?
                .to_owned(),
            token_type: body["token_type"].as_str().unwrap_or("DPoP").to_owned(),
            expires_at: now() + body["expires_in"].as_u64().unwrap_or(0),
            scope: body["scope"].as_str().unwrap_or_default().to_owned(),
        };
        if token.token_type != "DPoP" {
            bail!(
                "the appliance issued a {} token, not a DPoP-bound one",
                token.token_type
            );
        }
        write_private(
            &self.dir.join("token.json"),
            &serde_json::to_string(&token)?,
        )?;
        let access = token.access_token.clone();
        self.token = Some(token);
        Ok(access)
    }

    /// Calls the API with a DPoP-bound token; retries once with the server's nonce when asked.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        json_body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, String)> {
        let token = self.access_token()?;
        let url = self.url(path);
        let htu = url.split(['?', '#']).next().unwrap_or(&url).to_owned();
        for attempt in 0..2 {
            let proof = self
                .key
                .proof(method, &htu, now(), Some(&token), self.nonce.as_deref())?;
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof);
            let result = match json_body {
                Some(body) => self.agent.run(
                    request
                        .header("Content-Type", "application/json")
                        .body(body.to_string())?,
                ),
                None => self.agent.run(request.body(())?),
            };
            let mut response = result.with_context(|| format!("{method} {url}"))?;
            if let Some(nonce) = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                self.nonce = Some(nonce.to_owned());
            }
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let wants_nonce = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("use_dpop_nonce"));
            if status == 401 && wants_nonce && attempt == 0 {
                continue;
            }
            return Ok((status, text));
        }
        bail!("{method} {url}: the server kept asking for a DPoP nonce")
    }
}

/// `stella login`.
pub(crate) fn run(args: LoginArgs) -> anyhow::Result<()> {
    let dir = default_dir(args.dir)?;
    let profile = Profile {
        url: args.url.trim_end_matches('/').to_owned(),
        client_id: args.client_id,
        client_secret_file: std::path::absolute(&args.client_secret_file)
            .unwrap_or(args.client_secret_file),
        scope: args.scope,
        ca_cert: args
            .ca_cert
            .map(|ca| std::path::absolute(&ca).unwrap_or(ca)),
    };
    let mut client = ApiClient::new(dir.clone(), profile.clone())?;
    // A new login never reuses a cached token.
    client.token = None;
    client.access_token()?;
    write_private(
        &dir.join("profile.json"),
        &serde_json::to_string_pretty(&profile)?,
    )?;
    let token = client.token.as_ref().context("no token after login")?;
    println!(
        "stella: logged in to {} as {} (scopes: {}; DPoP key {}; token expires in {} s)",
        profile.url,
        profile.client_id,
        token.scope,
        client.key.thumbprint(),
        token.expires_at.saturating_sub(now())
    );
    Ok(())
}

/// `stella api METHOD PATH`.
pub(crate) fn api(args: ApiArgs) -> anyhow::Result<()> {
    let body = args
        .json
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("--json is not JSON")?;
    let mut client = ApiClient::load(args.dir)?;
    let (status, text) =
        client.request(&args.method.to_ascii_uppercase(), &args.path, body.as_ref())?;
    println!("{text}");
    if !(200..300).contains(&status) {
        bail!("{} {} answered {status}", args.method, args.path);
    }
    Ok(())
}

/// Flags of `stella reset-password`.
#[derive(clap::Args, Debug)]
pub(crate) struct ResetPasswordArgs {
    /// The console user; `admin` is re-created when missing.
    #[arg(long, default_value = "admin")]
    user: String,
    /// The daemon's data directory (the daemon must be stopped: it holds the lock).
    #[arg(
        long,
        env = "STELLA_DATA",
        value_name = "DIR",
        default_value = "./var/stella"
    )]
    data_dir: PathBuf,
}

/// `stella reset-password`: offline recovery of a console account. Run on the appliance with the
/// daemon stopped; gives the user a new one-time password (printed once, change forced at the
/// next login), clears its lockout and ends its sessions. Audited as `user.password_reset`.
pub(crate) fn reset_password(args: ResetPasswordArgs) -> anyhow::Result<()> {
    use stella_store::{AuditEvent, Stores, UserRecord};

    let stores = Stores::open(&args.data_dir)?;
    let password = stella_authority::random_token()?;
    let hash = stella_authority::hash_secret(&password)?;
    let catalog = &stores.catalog;
    let created = match catalog.user(&args.user)? {
        Some(_) => {
            catalog.set_password(&args.user, &hash, true)?;
            catalog.reset_login_failures(&args.user)?;
            catalog.delete_user_sessions(&args.user)?;
            false
        }
        None if args.user == "admin" => {
            catalog.insert_user(&UserRecord {
                name: "admin".to_owned(),
                password_hash: hash,
                role: "admin".to_owned(),
                must_change: true,
                failures: 0,
                last_failure: 0,
                created_at: now(),
            })?;
            true
        }
        None => bail!(
            "no console user {:?} in {}",
            args.user,
            args.data_dir.display()
        ),
    };
    catalog.audit(&AuditEvent {
        at: now(),
        actor: "local-operator".to_owned(),
        action: "user.password_reset".to_owned(),
        target: args.user.clone(),
        detail: serde_json::json!({ "created": created, "source": "stella reset-password" })
            .to_string(),
        request_id: None,
    })?;
    println!(
        "stella: console user {:?} one-time password: {password} (must be changed at next login)",
        args.user
    );
    Ok(())
}

//! Helpers for the Authority's end-to-end tests: start the daemon keeping every stdout line
//! (the bootstrap password, the TLS fingerprint), HTTP/1.1 with bodies and cookies, and the
//! console walk that turns the bootstrap admin into a registered API client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running daemon with its stdout lines.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub scheme: String,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Daemon {
    /// `stella serve --data-dir DIR` plus `extra` (default listen 127.0.0.1:0).
    pub fn start(data_dir: &Path, extra: &[&str]) -> Daemon {
        Self::start_env(data_dir, extra, &[])
    }

    /// [`Daemon::start`] with extra environment variables (e.g. `SOFTHSM2_CONF`).
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stella"));
        command.args(["serve", "--data-dir"]).arg(data_dir);
        for (name, value) in env {
            command.env(name, value);
        }
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .env_remove("STELLA_LISTEN")
            .env_remove("STELLA_DATA")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stella serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("daemon did not start: {err}");
            }
        };
        let rest = first
            .strip_prefix("stella: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let (scheme, addr) = rest.split_once("://").unwrap();
        let mut daemon = Daemon {
            addr: addr.parse().unwrap(),
            scheme: scheme.to_owned(),
            child,
            lines,
            seen: vec![first.clone()],
        };
        // The operator lines follow at once; give them a moment.
        while let Ok(line) = daemon.lines.recv_timeout(Duration::from_millis(300)) {
            daemon.seen.push(line);
        }
        daemon
    }

    /// The stdout line starting with `prefix`, if printed.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.seen
            .iter()
            .find(|l| l.starts_with(prefix))
            .map(String::as_str)
    }

    /// The one-time password of `admin`, when this start created it.
    pub fn bootstrap_password(&self) -> Option<String> {
        self.line("stella: bootstrap console user \"admin\" one-time password: ")
            .map(|l| {
                l.split("one-time password: ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_owned()
            })
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of the Set-Cookie header setting `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap().trim().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value of `<input ... name="NAME" value="...">` in an HTML page.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    /// The text of `<code id="ID">...</code>`.
    pub fn code(&self, id: &str) -> String {
        let marker = format!("<code id=\"{id}\">");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {id} in {}", self.body))
            + marker.len();
        self.body[start..].split('<').next().unwrap().to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request over plain TCP with `Connection: close`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(&raw_request(addr, method, path, headers, body))
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head.into_bytes()
}

pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Signs in as `admin` with the bootstrap password, is sent to the forced password change,
/// changes it to `new_password`, and returns the session cookie.
pub fn first_admin_login(daemon: &Daemon, new_password: &str) -> String {
    let addr = daemon.addr;
    let password = daemon
        .bootstrap_password()
        .expect("bootstrap password on stdout");
    let page = http(addr, "GET", "/login", &[], "");
    assert_eq!(page.status, 200);
    let login_cookie = page.cookie("stella_login_csrf").unwrap();
    let csrf = page.hidden("csrf");
    let login = http(
        addr,
        "POST",
        "/login",
        &[FORM, ("Cookie", &login_cookie)],
        &format!("csrf={csrf}&username=admin&password={password}"),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), Some("/account/password"));
    let session = login.cookie("stella_session").unwrap();
    // Any other page sends a must-change user back to the password form.
    let home = http(addr, "GET", "/", &[("Cookie", &session)], "");
    assert_eq!(home.header("location"), Some("/account/password"));
    let form = http(
        addr,
        "GET",
        "/account/password",
        &[("Cookie", &session)],
        "",
    );
    let csrf = form.hidden("csrf");
    let changed = http(
        addr,
        "POST",
        "/account/password",
        &[FORM, ("Cookie", &session)],
        &format!("csrf={csrf}&current={password}&new={new_password}&confirm={new_password}"),
    );
    assert_eq!(changed.status, 303, "{}", changed.body);
    let home = http(addr, "GET", "/", &[("Cookie", &session)], "");
    assert_eq!(home.status, 200, "{}", home.body);
    session
}

/// Registers an API client through the console form; returns its secret.
pub fn register_client(daemon: &Daemon, session: &str, client_id: &str, scopes: &str) -> String {
    let addr = daemon.addr;
    let page = http(addr, "GET", "/console/clients", &[("Cookie", session)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf");
    let scopes = scopes.replace(' ', "+");
    let created = http(
        addr,
        "POST",
        "/console/clients",
        &[FORM, ("Cookie", session)],
        &format!("csrf={csrf}&client_id={client_id}&scopes={scopes}"),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    created.code("client-secret")
}

/// Registers API client `client_id` with `scopes` through the console and returns a bearer
/// token for it (the daemon's configuration must allow bearer tokens).
pub fn bearer_token(daemon: &Daemon, session: &str, client_id: &str, scopes: &str) -> String {
    let secret = register_client(daemon, session, client_id, scopes);
    let body = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope={}",
        scopes.replace(' ', "+")
    );
    let token = http(daemon.addr, "POST", "/oauth/token", &[FORM], &body);
    assert_eq!(token.status, 200, "{}", token.body);
    token.json()["access_token"].as_str().unwrap().to_owned()
}

//! Headless Chromium for the console's end-to-end tests: Debian's `chromedriver` on a loopback
//! port, driven over plain HTTP by `fantoccini` (no TLS stack: the driver and the daemon are both
//! on 127.0.0.1), a fresh profile and download folder per browser, and screenshots under the
//! workspace's `target/screenshots/`. Browsers run one at a time: the machines have two cores.
//!
//! Without Chromium or ChromeDriver a test fails when `CI` is set (CI runs with `CI=true`) and is
//! skipped, loudly, elsewhere (`tests/run` installs both).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags every browser starts with: headless, and nothing that reaches off the machine
/// (without the background-networking flags Chromium keeps calling Google's hosts).
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1024,900",
];

/// How long a page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// Held by each browser while it lives (an async lock: it is held across awaits).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether Chromium and ChromeDriver are installed. With `CI` set their absence is a failure;
/// elsewhere the test is skipped with a loud message.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "browser test {test} needs {missing:?}: install the Debian packages chromium and \
         chromium-driver (tests/run does)"
    );
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("\n********** SKIPPED: {message} **********\n");
    false
}

/// Where screenshots go: `target/screenshots/` in the workspace (whatever `CARGO_TARGET_DIR`
/// says: `tests/run` keeps the build elsewhere, the screenshots stay with the checkout).
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium under ChromeDriver, pointed at one daemon.
pub struct Browser {
    pub client: Client,
    driver: Child,
    base: String,
    test: String,
    shots: u32,
    /// Where the browser saves downloads.
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts ChromeDriver and a browser for `test` against the daemon at `base` (`http://…`).
    pub async fn start(test: &str, base: &str) -> Browser {
        let turn = ONE_AT_A_TIME.lock().await;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, which the browser it starts joins: dropping the Browser after a
        // failed step (no WebDriver session close) still ends Chromium with the driver.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut stdout = BufReader::new(driver.stdout.take().unwrap()).lines();
        let mut said = Vec::new();
        for line in stdout.by_ref() {
            let line = line.unwrap();
            let ready = line.contains("started successfully");
            said.push(line);
            if ready {
                break;
            }
            assert!(said.len() < 50, "chromedriver did not start: {said:#?}");
        }
        // Keep reading, so that the driver never blocks on a full pipe.
        std::thread::spawn(move || stdout.for_each(drop));
        let profile = tempfile::tempdir().unwrap();
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            client,
            driver,
            base: base.trim_end_matches('/').to_owned(),
            test: test.to_owned(),
            shots: 0,
            downloads,
            _profile: profile,
            _turn: turn,
        }
    }

    /// Opens `path` on the daemon.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The page's visible text (read again when the page was replaced while reading it).
    pub async fn text(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.find("body").await.text().await {
                Ok(text) => return text,
                Err(e) => assert!(Instant::now() < deadline, "cannot read the page: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if Instant::now() > deadline => {
                    let page = self.path().await;
                    self.shot("missing-element").await;
                    panic!("no {css} on {page}: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Chooses `file` in the file input matching `css`.
    pub async fn choose_file(&self, css: &str, file: &Path) {
        let file = file.canonicalize().unwrap();
        self.find(css)
            .await
            .send_keys(&file.display().to_string())
            .await
            .unwrap();
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Submits the form holding the field matching `css`, as a click on its submit button would
    /// (`form.requestSubmit()`: the browser's own validation and submission), and waits for the
    /// next page to load.
    pub async fn submit(&self, css: &str) {
        let field = self.find(css).await;
        self.mark_old_page().await;
        self.client
            .execute(
                "arguments[0].form.requestSubmit(); return true;",
                vec![serde_json::to_value(&field).unwrap()],
            )
            .await
            .unwrap();
        self.wait_for_load().await;
    }

    /// Chooses `file` in the file input matching `css` and submits its form.
    pub async fn upload(&self, css: &str, file: &Path) {
        self.choose_file(css, file).await;
        self.submit(css).await;
    }

    /// Marks the shown document, so that [`Self::wait_for_load`] recognises the next one even
    /// at the same URL.
    async fn mark_old_page(&self) {
        self.client
            .execute(
                "document.documentElement.dataset.stellaOld = '1'; return true;",
                vec![],
            )
            .await
            .unwrap();
    }

    /// Clicks the link or button matching `css` and waits for the next page to load.
    pub async fn follow(&self, css: &str) {
        let element = self.find(css).await;
        self.mark_old_page().await;
        element.click().await.unwrap();
        self.wait_for_load().await;
    }

    /// Clicks the submit button matching `css` of a form that asks for confirmation
    /// (`data-confirm`), accepts the question, and waits for the next page.
    pub async fn confirm(&self, css: &str) {
        let button = self.find(css).await;
        self.mark_old_page().await;
        button.click().await.unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.client.get_alert_text().await {
                Ok(question) => {
                    eprintln!("confirming: {question}");
                    self.client.accept_alert().await.unwrap();
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "no confirmation asked: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_for_load().await;
    }

    /// Waits until the browser has saved a download named `name` and returns its path.
    pub async fn downloaded(&self, name: &str) -> PathBuf {
        let path = self.downloads.join(name);
        let partial = self.downloads.join(format!("{name}.crdownload"));
        let deadline = Instant::now() + PATIENCE;
        while !path.exists() || partial.exists() {
            assert!(
                Instant::now() < deadline,
                "{name} was not downloaded: {:?}",
                std::fs::read_dir(&self.downloads)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        path
    }

    /// Waits until a document without the old page's mark has loaded.
    async fn wait_for_load(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' && !document.documentElement.dataset.stellaOld;",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(Instant::now() < deadline, "no new page loaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's text contains `needle` (pages that refresh themselves are read
    /// again until it shows).
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE * 4;
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                self.shot("timeout").await;
                panic!("{needle:?} never showed on {}: {text}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot as `screenshots/TEST-NN-NAME.png` and returns its path.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{}-{:02}-{name}.png", self.test, self.shots));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Saves a numbered screenshot (the counter orders a test's screenshots), after checking
    /// that the page fits the 1024 px window: nothing scrolls sideways but the tables' own
    /// scrolling boxes.
    pub async fn step(&mut self, name: &str) -> PathBuf {
        self.shots += 1;
        let widths = self
            .client
            .execute(
                "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let shot = self.shot(name).await;
        let (scroll, client) = (widths[0].as_u64(), widths[1].as_u64());
        assert!(
            scroll <= client,
            "{name}: the page is {scroll:?} px wide in a {client:?} px window ({})",
            shot.display()
        );
        shot
    }

    /// Signs in as `user` with `password`.
    pub async fn sign_in(&mut self, user: &str, password: &str) {
        self.open("/login").await;
        self.fill("input[name=username]", user).await;
        self.fill("input[name=password]", password).await;
        self.submit("input[name=password]").await;
        assert_ne!(self.path().await, "/login", "{}", self.text().await);
    }

    /// The `name` of the focused element.
    async fn focused(&self) -> String {
        let element = self.client.active_element().await.unwrap();
        element.attr("name").await.unwrap().unwrap_or_default()
    }

    /// Fills a form from the keyboard alone: types each of `values` into the focused field,
    /// checking it is the field named so, with Tab between them, then presses Enter and waits
    /// for the next page.
    pub async fn type_form(&self, values: &[(&str, &str)]) {
        const TAB: &str = "\u{E004}";
        const ENTER: &str = "\u{E007}";
        for (n, (name, text)) in values.iter().enumerate() {
            if n > 0 {
                let element = self.client.active_element().await.unwrap();
                element.send_keys(TAB).await.unwrap();
            }
            assert_eq!(
                &self.focused().await,
                name,
                "Tab does not reach the {name} field"
            );
            let element = self.client.active_element().await.unwrap();
            element.send_keys(text).await.unwrap();
        }
        self.mark_old_page().await;
        let element = self.client.active_element().await.unwrap();
        element.send_keys(ENTER).await.unwrap();
        self.wait_for_load().await;
    }

    /// Signs in as the bootstrap admin with its one-time password, is sent to the forced
    /// password change, and sets `new_password` — both forms from the keyboard alone (the
    /// sign-in form's user name field has the focus when the page opens).
    pub async fn first_sign_in(&mut self, bootstrap_password: &str, new_password: &str) {
        self.open("/login").await;
        self.step("login").await;
        self.type_form(&[("username", "admin"), ("password", bootstrap_password)])
            .await;
        assert_eq!(
            self.path().await,
            "/account/password",
            "the bootstrap password must be changed first"
        );
        self.step("password-change").await;
        self.click("input[name=current]").await;
        self.type_form(&[
            ("current", bootstrap_password),
            ("new", new_password),
            ("confirm", new_password),
        ])
        .await;
        assert_ne!(
            self.path().await,
            "/account/password",
            "{}",
            self.text().await
        );
        assert_ne!(self.path().await, "/login", "{}", self.text().await);
    }

    /// Closes the browser and stops ChromeDriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Ends ChromeDriver and everything in its process group (the browser among them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

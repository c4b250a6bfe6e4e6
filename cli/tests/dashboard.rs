//! The dashboard in a real headless Chromium, driven over WebDriver
//! (chromedriver): the page loads and shows a channel's counts, a dead
//! letter's bytes are shown as text (never markup), a requeue without the
//! token is refused and changes nothing, and with the token its button
//! requeues the letter. Needs `redis-server`, `chromium` and
//! `chromedriver` (`apt-get install redis-server chromium
//! chromium-driver`, or `scripts/setup`). `REDISUTIL_SCREENSHOT=<file>`
//! saves a screenshot of the page.

mod common;

use common::{redis_server, start_listening};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use redisutil::{Peer, RedisChannel, RedisStore};
use serde_json::{Value, json};

const TOKEN: &str = "a-token-of-32-characters-0123456";

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with the arguments `args(port)` gives and waits until
/// it listens on that port.
fn spawn(program: &str, install: &str, args: impl Fn(u16) -> Vec<String>) -> (Killed, u16) {
    let (child, port) = start_listening(program, install, |port| {
        let mut command = Command::new(program);
        command
            .args(args(port))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    });
    (Killed(child), port)
}

/// A WebDriver session on chromedriver.
struct Browser {
    base: String,
    _driver: Killed,
}

impl Browser {
    fn start(profile: &std::path::Path) -> Self {
        let (driver, port) = spawn(
            "chromedriver",
            "apt-get install chromium chromium-driver",
            |port| vec![format!("--port={port}")],
        );
        let profile = format!("--user-data-dir={}", profile.display());
        let capabilities = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1000,900",
                     profile],
        }}}});
        let session = call(
            "POST",
            &format!("http://127.0.0.1:{port}/session"),
            Some(capabilities),
        );
        let id = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Self {
            base: format!("http://127.0.0.1:{port}/session/{id}"),
            _driver: driver,
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(method, &format!("{}{path}", self.base), body)
    }

    fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.send(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_object()
                    .unwrap()
                    .values()
                    .next()
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// The first element `css` names, waited for up to 10 s.
    fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find_all(css).into_iter().next() {
                return element;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {css} on the page"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&self, element: &str) -> String {
        self.send("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.send(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.send(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Waits until the text of `css` holds `wanted`.
    fn wait_text(&self, css: &str, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            let elements = self.find_all(css);
            if let Some(text) = elements.first().map(|e| self.text(e))
                && text.contains(wanted)
            {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{css} never said {wanted:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base).call();
    }
}

/// One WebDriver call; its `value`.
fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let response = match method {
        "GET" => ureq::get(url).call(),
        _ => ureq::post(url)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(json!({})).to_string()),
    };
    let text = response
        .unwrap_or_else(|err| panic!("WebDriver {method} {url}: {err}"))
        .body_mut()
        .read_to_string()
        .unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["value"].take()
}

#[test]
fn the_dashboard_shows_counts_escapes_bytes_and_requeues_only_with_the_token() {
    let (redis, redis_port) = redis_server(&[]);
    let _redis = Killed(redis);
    let store = RedisStore::open(redis_port).unwrap();
    let client = RedisChannel::new(store.clone(), "/dash/a", Peer::Client).unwrap();
    let worker = RedisChannel::new(store, "/dash/a", Peer::Server).unwrap();
    let markup = r#"<img src=x onerror="document.title='owned'">"#;
    client.send_msgs([markup, "two", "three", "four"]).unwrap();
    let first = worker
        .lease_msg::<String>(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(worker.reject(&first).unwrap());

    let dir = std::env::temp_dir().join(format!("redisutil-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut dashboard = Killed(
        Command::new(env!("CARGO_BIN_EXE_redisutil"))
            .args([
                "dashboard",
                "/dash/",
                "--listen",
                "127.0.0.1:0",
                "--every",
                "0.2",
            ])
            .arg("--token-file")
            .arg(&token_file)
            .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut said = String::new();
    BufReader::new(dashboard.0.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    let url = said.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{said}");

    let browser = Browser::start(&dir.join("profile"));
    browser.go(&url);
    let row = browser.wait_text(r#"tr[data-channel="/dash/a"]"#, "/dash/a");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[1..5],
        ["3", "0", "0", "1"],
        "waiting, in flight, retrying, dead: {row}"
    );

    browser.click(r#"tr[data-channel="/dash/a"] button.show-dead"#);
    let letter = browser.wait_text("#dead tbody tr", "Refused");
    // The bytes as sent (the JSON of the string), as text.
    assert!(
        letter.contains(r#""<img src=x onerror=\"document.title='owned'\">""#),
        "{letter}"
    );
    assert!(
        browser.find_all("#dead img").is_empty(),
        "no markup from a message"
    );
    let title = browser.send("GET", "/title", None);
    assert_eq!(title, "redisutil dashboard");

    // No token: refused, nothing moves.
    browser.click("#dead button.requeue");
    browser.wait_text("#changed", "refused");
    assert_eq!(worker.lease_stats().unwrap().dead, 1);

    browser.type_into("#token", TOKEN);
    browser.click("#dead button.requeue");
    browser.wait_text("#changed", "requeued 1");
    let stats = worker.lease_stats().unwrap();
    assert_eq!((stats.dead, stats.depth), (0, 4));
    browser.wait_text(r#"tr[data-channel="/dash/a"]"#, "4 0 0 0");

    if let Ok(path) = std::env::var("REDISUTIL_SCREENSHOT") {
        let png = browser.send("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

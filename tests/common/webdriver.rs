//! A real headless Chromium, driven over the W3C WebDriver protocol by Debian's
//! chromedriver on a loopback port: what the browser tests need (open a page, find, click,
//! type, read, run a script, switch frames, take a screenshot), written against
//! chromedriver's HTTP interface with the standard library and serde_json, so the browser
//! tests need no new dependency.
//!
//! Each [`Browser`] has a fresh profile directory and its own chromedriver in a process
//! group of its own; `Drop` ends the session and kills that group (chromedriver and every
//! Chromium process it started), also when the test fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fixtures::TempDir;
use super::wait_for;

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags that work on a closed network, as root, without a display.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// What the browser tests need on this machine, or why they cannot run.
pub fn available() -> Result<(), String> {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(tool).exists() {
            return Err(format!(
                "{tool} is not installed (Debian's chromium, chromium-driver)"
            ));
        }
    }
    Ok(())
}

/// A page element, as WebDriver refers to it.
#[derive(Clone, Debug)]
pub struct Element(String);

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub fn start() -> Result<Browser, String> {
        let profile = TempDir::new("chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("chromedriver: {e}"))?;
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        if !wait_for(Duration::from_secs(20), || {
            browser
                .http("GET", "/status", None)
                .is_ok_and(|v| v["value"]["ready"] == json!(true))
        }) {
            return Err("chromedriver never became ready".into());
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(ToString::to_string).collect();
        args.push(format!("--user-data-dir={}", browser._profile.0.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let reply = browser.http("POST", "/session", Some(caps))?;
        browser.session = reply["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session from chromedriver: {reply}"))?
            .to_string();
        Ok(browser)
    }

    /// One WebDriver command of this session; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let reply = self.http(method, &format!("/session/{}{path}", self.session), body)?;
        Ok(reply["value"].clone())
    }

    /// One HTTP request to chromedriver (a connection each: `Connection: close`).
    fn http(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("chromedriver: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(90)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let payload = read_reply(&mut stream).map_err(|e| format!("{method} {path}: {e}"))?;
        let value: Value = serde_json::from_slice(&payload).map_err(|e| {
            format!(
                "{method} {path}: {e}: {}",
                String::from_utf8_lossy(&payload)
            )
        })?;
        if let Some(error) = value["value"]["error"].as_str() {
            return Err(format!(
                "{method} {path}: {error}: {}",
                value["value"]["message"].as_str().unwrap_or_default()
            ));
        }
        Ok(value)
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// The first element `css` selects, if any (in the current frame).
    pub fn find(&self, css: &str) -> Option<Element> {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    /// Waits up to `timeout` for an element `css` selects.
    pub fn wait(&self, css: &str, timeout: Duration) -> Result<Element, String> {
        let mut found = None;
        wait_for(timeout, || {
            found = self.find(css);
            if found.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            found.is_some()
        });
        found.ok_or_else(|| format!("nothing matches {css:?} after {timeout:?}"))
    }

    /// Clicks what `css` selects once it can be clicked. A page that draws itself anew (on
    /// a timer, on an event) can replace the element between finding and clicking it, or
    /// show it a moment later: find and click again, up to `timeout`.
    pub fn click_css(&self, css: &str, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            let result = match self.find(css) {
                Some(e) => self.click(&e),
                None => Err(format!("nothing matches {css:?}")),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Types into what `css` selects once it takes input (as [`Browser::click_css`]).
    pub fn type_css(&self, css: &str, text: &str, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            let result = match self.find(css) {
                Some(e) => self.type_into(&e, text),
                None => Err(format!("nothing matches {css:?}")),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Clicks an element, scrolled to the middle of its frame first (chromedriver's own
    /// scrolling does not always reach into a frame's scrolled document).
    pub fn click(&self, e: &Element) -> Result<(), String> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "arguments[0].scrollIntoView({block: 'center'});",
                "args": [{ELEMENT: e.0}],
            })),
        )?;
        self.call("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .map(drop)
    }

    /// Types `text` into an element (WebDriver's key codes, e.g. `\u{e00c}` Escape, work).
    pub fn type_into(&self, e: &Element, text: &str) -> Result<(), String> {
        self.call(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    pub fn text(&self, e: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", e.0), None)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    pub fn enabled(&self, e: &Element) -> bool {
        self.call("GET", &format!("/element/{}/enabled", e.0), None)
            .is_ok_and(|v| v == json!(true))
    }

    /// Runs `script` (a function body; `arguments` as WebDriver passes them) in the page.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Works inside this frame (an iframe element) from now on.
    pub fn enter_frame(&self, frame: &Element) -> Result<(), String> {
        self.call("POST", "/frame", Some(json!({"id": {ELEMENT: frame.0}})))
            .map(drop)
    }

    /// Back to the top-level page.
    pub fn leave_frames(&self) -> Result<(), String> {
        self.call("POST", "/frame", Some(json!({"id": null})))
            .map(drop)
    }

    /// The window as a PNG.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.call("GET", "/screenshot", None)?;
        base64_decode(v.as_str().ok_or("no screenshot")?)
    }

    /// Waits up to `timeout` for `script` (run in the current frame) to return true.
    pub fn wait_until(&self, script: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.script(script).is_ok_and(|v| v == json!(true)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http("DELETE", &format!("/session/{}", self.session), None);
        }
        // chromedriver and the Chromium it started are the process group it leads.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// The body of one HTTP reply. chromedriver keeps the connection open whatever the
/// request says, so the reply ends where its Content-Length (or last chunk) says.
fn read_reply(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let body = &raw[split + 4..];
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|n| n.trim().parse::<usize>().ok())
            });
            match length {
                Some(n) if body.len() >= n => return Ok(body[..n].to_vec()),
                None if head.contains("transfer-encoding: chunked")
                    && body.windows(5).any(|w| w == b"0\r\n\r\n") =>
                {
                    return Ok(dechunk(body));
                }
                _ => {}
            }
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "the connection closed: {}",
                String::from_utf8_lossy(&raw)
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The body of a chunked HTTP reply.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let after = &rest[eol + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = after[n..].strip_prefix(b"\r\n").unwrap_or(&after[n..]);
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

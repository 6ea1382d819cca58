//! Just enough of the W3C WebDriver protocol to drive Debian's headless
//! Chromium through chromedriver: JSON over HTTP/1.1, one connection per
//! command, blocking (run it off the async runtime).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session, both ended on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height`
    /// that saves downloads into `downloads`.
    pub fn start(width: u32, height: u32, downloads: &Path) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).is_file() && Path::new(CHROMIUM).is_file(),
            "{CHROMEDRIVER} and {CHROMIUM} are missing: `make sysdeps` installs Debian's chromium and chromium-driver"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser.call("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = downloads.join("profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let session = browser
            .call("POST", "/session", Some(capabilities))
            .expect("a browser session");
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        // Headless Chromium saves downloads only when told where.
        browser.command(
            "POST",
            "goog/cdp/execute",
            json!({"cmd": "Browser.setDownloadBehavior", "params": {
                "behavior": "allow", "downloadPath": downloads.display().to_string(),
            }}),
        );
        browser
    }

    pub fn open(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url }));
    }

    pub fn find(&self, css: &str) -> Element {
        let found = self.command(
            "POST",
            "element",
            json!({"using": "css selector", "value": css}),
        );
        Element(found[ELEMENT].as_str().expect("an element").to_string())
    }

    pub fn click(&self, element: &Element) {
        self.command("POST", &format!("element/{}/click", element.0), json!({}));
    }

    /// Types `text` into an element; into a file input, a path uploads it.
    pub fn type_into(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("element/{}/value", element.0),
            json!({ "text": text }),
        );
    }

    pub fn clear(&self, element: &Element) {
        self.command("POST", &format!("element/{}/clear", element.0), json!({}));
    }

    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        let text = self.command("GET", &format!("element/{}/text", element.0), json!(null));
        text.as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body) with `args`; answers what it returns.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Presses the primary button at the first point of `path` (CSS
    /// pixels in the viewport), drags through the rest, and releases.
    pub fn drag(&self, path: &[(i32, i32)]) {
        let mut actions = Vec::new();
        for (k, &(x, y)) in path.iter().enumerate() {
            actions.push(json!({"type": "pointerMove", "origin": "viewport", "x": x, "y": y, "duration": 20}));
            if k == 0 {
                actions.push(json!({"type": "pointerDown", "button": 0}));
            }
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.command(
            "POST",
            "actions",
            json!({"actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": actions,
            }]}),
        );
        self.command("DELETE", "actions", json!(null));
    }

    /// Waits until `css`'s text satisfies `ok`; panics with the last text.
    pub fn wait_text(&self, css: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(css);
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} still reads {text:?} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "window/rect",
            json!({"width": width, "height": height}),
        );
    }

    /// A PNG of the window.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.command("GET", "screenshot", json!(null));
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a screenshot"))
            .expect("base64 screenshot");
        std::fs::write(path, png).expect("screenshot written");
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        let body = (!body.is_null()).then_some(body);
        self.call(method, &path, body)
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"))
    }

    /// One command: its `value`, or the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let (head, payload) = exchange(self.addr, request.as_bytes()).map_err(|e| e.to_string())?;
        let payload = String::from_utf8_lossy(&payload);
        let value: Value = serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?;
        let value = value["value"].clone();
        if head.starts_with("HTTP/1.1 200") {
            Ok(value)
        } else {
            Err(format!("{}: {}", value["error"], value["message"]))
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 request on its own connection: the response's head and
/// body (read by its length, or its chunks; servers may keep the
/// connection open).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.write_all(request)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "the connection closed before the headers",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end + 4..].to_vec();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let mut more = |body: &mut Vec<u8>| -> std::io::Result<bool> {
        let n = stream.read(&mut chunk)?;
        body.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    };
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length && more(&mut body)? {}
        body.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // Until the last chunk (size 0) has arrived.
        while !body.ends_with(b"0\r\n\r\n") && more(&mut body)? {}
        body = unchunk(&body);
    } else {
        while more(&mut body)? {}
    }
    Ok((head, body))
}

fn unchunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..at])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        let data = &rest[at + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        rest = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
    }
    out
}

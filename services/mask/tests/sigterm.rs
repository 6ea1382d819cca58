//! The real binary drains and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn binary_stops_cleanly_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inpaint-mask"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start inpaint-mask");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // {"level":"INFO","message":"serving","addr":"Some(127.0.0.1:PORT)",...}
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let at = line.find("127.0.0.1:")?;
            let rest = &line[at..];
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))?;
            (line.contains("serving")).then(|| rest[..end].to_string())
        })
        .expect("a serving line with the address");
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5)).expect("listening");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

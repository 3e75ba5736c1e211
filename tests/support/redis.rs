//! What the Redis tests share: the server's address from the environment, and a tiny raw
//! client (RESP over a TcpStream) to play a foreign or crashed lock holder without going
//! through `RedisStore`.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// The Redis URL from `AUTHED_REDIS_URL` (scripts/stores sets it). Without it the test is
/// skipped, except under CI (`CI=true`), where a missing Redis is a failure.
pub fn redis_url() -> Option<String> {
    match std::env::var("AUTHED_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but AUTHED_REDIS_URL is not set: run the Redis tests through scripts/stores"
            )
        }
        _ => {
            eprintln!(
                "skipped: AUTHED_REDIS_URL is not set (scripts/stores starts a redis-server and sets it)"
            );
            None
        }
    }
}

/// A prefix no other test (or earlier run) uses.
pub fn unique_prefix(name: &str) -> String {
    format!(
        "authed-test:{name}:{}:{}:",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    )
}

/// The name RedisStore gives `what` (`token`, `lock`, `fence`) of `key` under `prefix`.
pub fn redis_key(prefix: &str, key: &str, what: &str) -> String {
    format!("{prefix}{{{key}}}:{what}")
}

/// One command over a fresh connection; the reply as text (`nil` for a null bulk string).
pub fn raw(url: &str, args: &[&str]) -> String {
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(addr).expect("connect to redis");
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(cmd.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let line = line.trim_end().to_owned();
    match line.split_at(1) {
        ("$", "-1") => "nil".to_owned(),
        ("$", _) => {
            let mut value = String::new();
            reader.read_line(&mut value).unwrap();
            value.trim_end().to_owned()
        }
        ("-", e) => panic!("redis error: {e}"),
        (_, rest) => rest.to_owned(),
    }
}

//! The real authorization server of the fault harness: npm oidc-provider (interop/server.mjs)
//! with refresh-token rotation and reuse detection (a spent refresh token presented again
//! answers `invalid_grant` and revokes the whole login), optionally with a reuse grace
//! period, and counters read from the server's side (interop/rotation.mjs).
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::{AccessToken, RefreshToken, Token};
use serde_json::Value;

/// The confidential client the harness uses (`client_secret_post`).
pub const CLIENT_ID: &str = "authed-post";
pub const CLIENT_SECRET: &str = "post-secret";

/// One oidc-provider process; killed on drop (and it exits when our end of its stdin closes).
pub struct Oidc {
    child: Child,
    pub issuer: String,
    _stdin: ChildStdin,
}

/// What the server counted (GET /test/rotation).
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// Refresh-token grant requests the server handled.
    pub presented: u64,
    /// Presentations of a refresh token that had been presented before.
    pub presented_again: u64,
    pub refreshed: u64,
    pub invalid_grant: u64,
    pub grace_reuses: u64,
    /// Logins (grants) that still hold a usable refresh token.
    pub alive_logins: u64,
    /// Whether the login asked about is alive.
    pub grant_alive: Option<bool>,
    /// When the server answered each successful refresh.
    pub rotated_at: Vec<SystemTime>,
}

/// A login made without a browser (POST /test/login).
#[derive(Debug, Clone)]
pub struct Login {
    pub grant_id: String,
    pub refresh_token: String,
    pub access_token: String,
    pub expires_in: u64,
}

impl Login {
    /// The login as a sign-in leaves it, with its access token already expired: the first
    /// demand refreshes.
    pub fn expired_token(&self) -> Token {
        Token::new(AccessToken::new(self.access_token.clone()))
            .with_lifetime(UNIX_EPOCH, Duration::from_secs(1))
            .with_refresh_token(Some(RefreshToken::new(self.refresh_token.clone())))
    }
}

impl Oidc {
    /// Starts a strict server (no grace period). Access tokens live `ttl` seconds.
    pub fn start(ttl: u64) -> Self {
        Self::start_with(ttl, 0)
    }

    /// Starts a server that accepts a spent refresh token again for `grace` seconds.
    pub fn start_with(ttl: u64, grace: u64) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "interop/node_modules is missing: run scripts/faults (it runs npm ci)"
        );
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
        let mut child = Command::new(&node)
            .arg("server.mjs")
            .current_dir(&dir)
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .env("PORT", "0")
            .env("ACCESS_TOKEN_TTL", ttl.to_string())
            .env("REFRESH_REUSE_GRACE", grace.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{node} interop/server.mjs`: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(issuer) = line.trim().strip_prefix("READY issuer=") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "oidc-provider did not get ready: {line:?}\n{}",
                log.lock().unwrap()
            );
        };
        Oidc {
            issuer: issuer.to_owned(),
            child,
            _stdin: stdin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A new login of `sub` for the harness's client.
    pub async fn login(&self, sub: &str) -> Login {
        let v: Value = reqwest::Client::new()
            .post(self.url("/test/login"))
            .form(&[("client_id", CLIENT_ID), ("sub", sub)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k} in {v}"))
                .to_owned()
        };
        Login {
            grant_id: s("grant_id"),
            refresh_token: s("refresh_token"),
            access_token: s("access_token"),
            expires_in: v["expires_in"].as_u64().unwrap_or(0),
        }
    }

    /// The server's counters; `grant` also asks whether that login is alive.
    pub async fn rotation(&self, grant: Option<&str>) -> Rotation {
        let url = match grant {
            Some(g) => format!("{}?grant={g}", self.url("/test/rotation")),
            None => self.url("/test/rotation"),
        };
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Rotation {
            presented: n("presented"),
            presented_again: n("presented_again"),
            refreshed: n("refreshed"),
            invalid_grant: n("invalid_grant"),
            grace_reuses: n("grace_reuses"),
            alive_logins: n("alive_logins"),
            grant_alive: v["grant_alive"].as_bool(),
            rotated_at: v["rotated_at"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Revokes a login at the server (an admin's or the user's doing).
    pub async fn revoke(&self, grant: &str) {
        reqwest::Client::new()
            .post(self.url("/test/revoke-grant"))
            .form(&[("grant_id", grant)])
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// The `sub` the protected resource sees for an access token, or `None` when refused.
    pub async fn subject_of(&self, access_token: &str) -> Option<String> {
        let resp = reqwest::Client::new()
            .get(self.url("/api/resource"))
            .bearer_auth(access_token)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: Value = resp.json().await.ok()?;
        v["sub"].as_str().map(str::to_owned)
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

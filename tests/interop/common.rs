//! What both interop binaries share: starting a server process by the READY contract of
//! interop/README.md, a source that counts what the client asks of it, and the protected
//! resource's call.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authed::{AuthedClient, Error, Token, TokenFuture, TokenSource};
use serde_json::Value;

/// Starts an interop server (`command`, which follows interop/README.md's READY contract) on
/// a free port and returns it with its issuer. It exits when the returned stdin is dropped.
pub fn spawn_ready(mut command: Command, what: &str) -> (Child, ChildStdin, String) {
    let mut child = command
        .env("EXIT_ON_STDIN_CLOSE", "1")
        .env("PORT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");

    // Keep draining stderr (warnings, request logs) so the server never blocks on a full
    // pipe; keep it to show if the server does not come up.
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
    // Generous: two Python or Node processes starting on a loaded 2-core machine.
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let Some(issuer) = line.trim().strip_prefix("READY issuer=") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`{what}` did not get ready (stdout: {line:?}); stderr:\n{}",
            log.lock().unwrap()
        );
    };
    (child, stdin, issuer.to_owned())
}

/// Counts what the [`AuthedClient`] asks of its source: how many retries it made.
#[derive(Debug)]
pub struct Counting<S> {
    inner: S,
    tokens: AtomicUsize,
    rejected: AtomicUsize,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            tokens: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
        })
    }

    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::SeqCst)
    }
}

impl<S: TokenSource> TokenSource for Counting<S> {
    fn token(&self) -> TokenFuture<'_> {
        self.tokens.fetch_add(1, Ordering::SeqCst);
        self.inner.token()
    }

    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        self.rejected.fetch_add(1, Ordering::SeqCst);
        self.inner.token_rejected(rejected)
    }
}

/// GETs the protected resource through `client` and returns its JSON.
pub async fn resource(client: &AuthedClient) -> Result<Value, Error> {
    let response = client.get("resource").send().await?;
    assert_eq!(response.status(), 200);
    Ok(response.json().await.expect("JSON from /api/resource"))
}

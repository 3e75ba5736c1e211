//! Real OS processes sharing one login in one store (RedisStore or FileStore), driven line by
//! line: the parent writes commands to a child's stdin and reads what it did from its stdout.
//! The child is the test binary again, running the ignored test named by [`Spec::test`].
//!
//! Commands: `token` (ask the login for a token; answered `OK <seq> <access token>` or
//! `ERR <seq> <kind> <reauthorize>`), `stop-after-locked-load` (the next time this process
//! reads the store while holding the refresh lock, it stops itself with `SIGSTOP` right after
//! the read: between its re-read and its token request), `logout` (answered `LOGGED_OUT ok`
//! or `LOGGED_OUT <kind>`), `quit`.
//! Announcements: `READY`, `LOCKED`, `UNLOCKED`, `LOADED` (a read under the lock).
#![allow(dead_code)] // each test binary uses a part

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use authed::{
    BoxFuture, Error, FileStore, OAuthConfig, RedisStore, RefreshToken, StoreLock, Token,
    TokenSource, TokenStore,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The store key of the shared login.
pub const KEY: &str = "shared-login";

/// How to start a child.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The ignored test that runs [`child_main`].
    pub test: &'static str,
    /// `redis:<url>` or `file:<path>`.
    pub store: String,
    /// RedisStore key prefix.
    pub prefix: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The configuration's timeout.
    pub timeout: Duration,
    /// RedisStore lock time to live.
    pub lock_ttl: Duration,
    /// RedisStore command timeout.
    pub command_timeout: Duration,
}

impl Spec {
    fn command(&self, name: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            self.test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AUTHED_FAULT_CHILD", name)
        .env("AUTHED_FAULT_STORE", &self.store)
        .env("AUTHED_FAULT_PREFIX", &self.prefix)
        .env("AUTHED_FAULT_TOKEN_URL", &self.token_url)
        .env("AUTHED_FAULT_CLIENT_ID", &self.client_id)
        .env("AUTHED_FAULT_CLIENT_SECRET", &self.client_secret)
        .env(
            "AUTHED_FAULT_TIMEOUT_MS",
            self.timeout.as_millis().to_string(),
        )
        .env(
            "AUTHED_FAULT_LOCK_TTL_MS",
            self.lock_ttl.as_millis().to_string(),
        )
        .env(
            "AUTHED_FAULT_COMMAND_TIMEOUT_MS",
            self.command_timeout.as_millis().to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
        cmd
    }
}

/// A child as the parent sees it.
pub struct Process {
    pub name: String,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
    seq: u64,
}

/// The answer to one `token` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok(String),
    Err { kind: String, reauthorize: bool },
}

impl Answer {
    pub fn kind(&self) -> &str {
        match self {
            Answer::Ok(_) => "ok",
            Answer::Err { kind, .. } => kind,
        }
    }
}

impl Process {
    pub async fn spawn(spec: &Spec, name: &str) -> Process {
        let mut child = spec.command(name).spawn().expect("start a child process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let line = line.trim().to_owned();
                if !line.is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Process {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            log: Vec::new(),
            seq: 0,
        };
        p.expect("READY", |l| l == "READY").await;
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the child is running")
    }

    pub async fn send(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to the child");
        self.stdin.flush().await.unwrap();
    }

    /// Waits for the next line (after those already read) that `matches`. The bound is a
    /// failure timeout only.
    pub async fn expect(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.log.push(line.clone());
                if matches(&line) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(90), wait).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{}: exited while the test waited for {what}; log {:?}",
                self.name, self.log
            ),
            Err(_) => panic!(
                "{}: timed out waiting for {what}; log {:?}",
                self.name, self.log
            ),
        }
    }

    /// Starts a `token` command; its answer is read with [`answer`](Self::answer).
    pub async fn ask(&mut self) -> u64 {
        self.seq += 1;
        self.send("token").await;
        self.seq
    }

    /// The answer to `token` command `seq`.
    pub async fn answer(&mut self, seq: u64) -> Answer {
        let ok = format!("OK {seq} ");
        let err = format!("ERR {seq} ");
        let line = self
            .expect(&format!("the answer to token #{seq}"), |l| {
                l.starts_with(&ok) || l.starts_with(&err)
            })
            .await;
        parse_answer(&line)
    }

    /// `token`, and its answer.
    pub async fn token(&mut self) -> Answer {
        let seq = self.ask().await;
        self.answer(seq).await
    }

    /// Sends `sig` (`-STOP`, `-CONT`, ...). After `-STOP`, waits until the process is
    /// stopped: the signal is delivered asynchronously, and under load the process can run on
    /// for a while after `kill` returned.
    pub async fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.name);
        if sig == "-STOP" {
            self.stopped().await;
        }
    }

    /// Waits until the process is stopped (state `T` in `/proc/<pid>/stat`). The bound is a
    /// failure timeout only.
    pub async fn stopped(&self) {
        let stat = format!("/proc/{}/stat", self.pid());
        let is_stopped = || {
            std::fs::read_to_string(&stat).is_ok_and(|s| {
                // The state follows the command name, which is in parentheses.
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
            })
        };
        let waited = tokio::time::timeout(Duration::from_secs(90), async {
            while !is_stopped() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{} did not stop", self.name);
    }

    /// `SIGKILL`, and waits for the process to be gone.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Ends the child normally.
    pub async fn quit(mut self) {
        let _ = self.send("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

fn parse_answer(line: &str) -> Answer {
    let mut parts = line.split(' ');
    match parts.next() {
        Some("OK") => Answer::Ok(parts.nth(1).unwrap_or_default().to_owned()),
        _ => {
            let _seq = parts.next();
            let kind = parts.next().unwrap_or_default().to_owned();
            let reauthorize = parts.next() == Some("true");
            Answer::Err { kind, reauthorize }
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn ms(name: &str) -> Duration {
    Duration::from_millis(env(name).parse().unwrap())
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{line}");
    let _ = out.flush();
    // With the crate's log on, each line also goes there, timed, beside what the crate did.
    if std::env::var_os("AUTHED_FAULTS_LOG").is_some() {
        tracing::info!(pid = std::process::id(), "said {line}");
    }
}

/// Wraps the child's store: announces the lock, and can stop the process right after a read
/// under the lock.
#[derive(Debug)]
struct Announcing {
    inner: Arc<dyn TokenStore>,
    locked: Arc<AtomicBool>,
    stop_after_locked_load: Arc<AtomicBool>,
}

struct Unlocked(#[allow(dead_code)] StoreLock, Arc<AtomicBool>);

impl Drop for Unlocked {
    fn drop(&mut self) {
        self.1.store(false, Ordering::SeqCst);
        say("UNLOCKED");
    }
}

impl TokenStore for Announcing {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        Box::pin(async move {
            let loaded = self.inner.load(key).await;
            if self.locked.load(Ordering::SeqCst) {
                say("LOADED");
                if self.stop_after_locked_load.swap(false, Ordering::SeqCst) {
                    say("STOPPING");
                    // SIGSTOP raised on this thread stops it before `raise` returns (and the
                    // whole process with it), so nothing after this read runs before the stop.
                    // A `kill` command run from here is not synchronous: under load the process
                    // went on to write its in-flight record, or even send, before it stopped.
                    // SAFETY: raise has no memory-safety preconditions.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
            }
            loaded
        })
    }
    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.save(key, token)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.delete(key)
    }
    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.inner.delete_if_refresh_token(key, rejected)
    }
    fn lock_is_held<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        self.inner.lock_is_held(key)
    }
    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        Box::pin(async move {
            let lock = self.inner.lock(key).await?;
            self.locked.store(true, Ordering::SeqCst);
            say("LOCKED");
            Ok(StoreLock::new(Unlocked(lock, self.locked.clone())))
        })
    }
}

/// The child side. Returns at once unless this process was started as a child.
pub fn child_main() {
    if std::env::var("AUTHED_FAULT_CHILD").is_err() {
        return;
    }
    // AUTHED_FAULTS_LOG=authed=debug shows what the crate did in the children too (on their
    // stderr, which the parent's output carries).
    if let Ok(filter) = std::env::var("AUTHED_FAULTS_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store_spec = env("AUTHED_FAULT_STORE");
        let inner: Arc<dyn TokenStore> = match store_spec.split_once(':') {
            Some(("redis", url)) => Arc::new(
                RedisStore::builder(url)
                    .prefix(env("AUTHED_FAULT_PREFIX"))
                    .lock_ttl(ms("AUTHED_FAULT_LOCK_TTL_MS"))
                    .lock_wait(Duration::from_secs(60))
                    .command_timeout(ms("AUTHED_FAULT_COMMAND_TIMEOUT_MS"))
                    .build()
                    .await
                    .unwrap(),
            ),
            Some(("file", path)) => {
                Arc::new(FileStore::new(path).lock_timeout(Duration::from_secs(60)))
            }
            _ => panic!("bad AUTHED_FAULT_STORE {store_spec}"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let store = Arc::new(Announcing {
            inner,
            locked: Arc::new(AtomicBool::new(false)),
            stop_after_locked_load: stop.clone(),
        });
        let config = OAuthConfig::builder(env("AUTHED_FAULT_TOKEN_URL"))
            .client_id(env("AUTHED_FAULT_CLIENT_ID"))
            .client_secret(env("AUTHED_FAULT_CLIENT_SECRET"))
            .auth_method(authed::ClientAuthMethod::ClientSecretPost)
            .timeout(ms("AUTHED_FAULT_TIMEOUT_MS"))
            .build()
            .unwrap();
        let login = Arc::new(
            config
                .refresh_token_source()
                .store(store)
                .key(KEY)
                .from_store()
                .await
                .unwrap()
                .expect("the parent saved the login"),
        );
        say("READY");
        let seq = Arc::new(AtomicU64::new(0));
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.trim() {
                "token" => {
                    let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
                    let login = login.clone();
                    tokio::spawn(async move {
                        match login.token().await {
                            Ok(t) => say(&format!("OK {n} {}", t.access_token().secret())),
                            Err(e) => {
                                eprintln!("child token error: {e}");
                                say(&format!(
                                    "ERR {n} {} {}",
                                    e.kind(),
                                    e.requires_reauthorization()
                                ))
                            }
                        }
                    });
                }
                "stop-after-locked-load" => stop.store(true, Ordering::SeqCst),
                "logout" => match login.logout().await {
                    Ok(_) => say("LOGGED_OUT ok"),
                    Err(e) => say(&format!("LOGGED_OUT {}", e.kind())),
                },
                "quit" | "" => break,
                other => panic!("unknown command {other}"),
            }
        }
    });
}

//! A fleet of real OS processes sharing one RedisStore and one token endpoint (the parent's
//! in-process `TestProvider`), shared by tests/redis_fleet.rs (short runs) and
//! benches/fleet.rs (16 processes, 60 s). The parent says how to start a child (the test or
//! bench binary again); the child reads what to do from `AUTHED_FLEET_*` variables.

#![allow(dead_code)] // each user takes part of it

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use authed::testing::TestProvider;
use authed::{
    AccessToken, BoxFuture, Error, OAuthConfig, RedisStore, RefreshToken, StoreLock, Token,
    TokenSource, TokenStore,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The login key the refresh-token children share.
pub const LOGIN_KEY: &str = "fleet-login";

/// What a fleet run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How many child processes.
    pub processes: usize,
    /// How long each child keeps asking for tokens.
    pub duration: Duration,
    /// Access-token lifetime the provider gives.
    pub lifetime: Duration,
    /// `cc`, `refresh`, or `both`.
    pub grants: &'static str,
    /// The RedisStore lock's time to live.
    pub lock_ttl: Duration,
    /// Kill the refresh lock's holder in the middle of a token request.
    pub kill_holder: bool,
    /// The children's configuration timeout. A killed holder's refresh token is presented
    /// again only once nobody can still be reading its answer: twice this, plus 1 s of
    /// clock skew (issue 17 point 4); meanwhile callers without a valid token time out.
    pub timeout: Duration,
}

/// What a fleet run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub elapsed: Duration,
    pub cc_requests: usize,
    pub refresh_requests: usize,
    pub invalid_grants: usize,
    /// Refresh tokens presented more than once.
    pub reused_refresh_tokens: usize,
    /// Successful `token()` calls over all children, and failed ones.
    pub tokens: u64,
    pub errors: u64,
    /// Calls that ran out of time (`Error::Timeout`), counted apart from `errors`: callers
    /// waiting while a killed holder's refresh may still be answered.
    pub timeouts: u64,
    /// Children that did not exit successfully (the killed one is not counted).
    pub failed_children: usize,
    /// From the kill to the next token request the fleet sent, and to a new token in Redis.
    pub kill_to_next_request: Option<Duration>,
    pub kill_to_new_token: Option<Duration>,
    /// Token-request windows the run spanned, per grant: `duration / refresh interval`.
    pub windows: f64,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// A store that tells the parent (on stdout) when this process holds the login's lock, so
/// that the parent knows whom to kill.
#[derive(Debug)]
struct Announcing(RedisStore);

struct Unlocked(#[allow(dead_code)] StoreLock); // held only to be dropped

impl Drop for Unlocked {
    fn drop(&mut self) {
        say("UNLOCKED");
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{line}");
    let _ = out.flush();
}

impl TokenStore for Announcing {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        self.0.load(key)
    }
    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        self.0.save(key, token)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.0.delete(key)
    }
    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.0.delete_if_refresh_token(key, rejected)
    }
    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        Box::pin(async move {
            let lock = self.0.lock(key).await?;
            say("LOCKED");
            Ok(StoreLock::new(Unlocked(lock)))
        })
    }
}

/// The child side: asks for tokens until the duration is over, then prints
/// `STATS ok err timeouts`.
pub fn child_main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = RedisStore::builder(env("AUTHED_REDIS_URL"))
            .prefix(env("AUTHED_FLEET_PREFIX"))
            .lock_ttl(Duration::from_millis(
                env("AUTHED_FLEET_LOCK_TTL_MS").parse().unwrap(),
            ))
            .lock_wait(Duration::from_secs(60))
            .build()
            .await
            .unwrap();
        let config = OAuthConfig::builder(env("AUTHED_TOKEN_URL"))
            .client_id(TestProvider::CLIENT_ID)
            .client_secret(TestProvider::CLIENT_SECRET)
            .timeout(Duration::from_millis(
                env("AUTHED_FLEET_TIMEOUT_MS").parse().unwrap(),
            ))
            .build()
            .unwrap();
        let grants = env("AUTHED_FLEET_GRANTS");
        let mut sources: Vec<Arc<dyn TokenSource>> = Vec::new();
        if grants == "cc" || grants == "both" {
            sources.push(Arc::new(
                config
                    .client_credentials()
                    .store(Arc::new(store.clone()))
                    .build(),
            ));
        }
        if grants == "refresh" || grants == "both" {
            let login = config
                .refresh_token_source()
                .store(Arc::new(Announcing(store.clone())))
                .key(LOGIN_KEY)
                .from_store()
                .await
                .unwrap()
                .expect("the parent saved the login");
            sources.push(Arc::new(login));
        }
        let until = Instant::now()
            + Duration::from_millis(env("AUTHED_FLEET_DURATION_MS").parse().unwrap());
        let (ok, err) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let timeouts = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = sources
            .into_iter()
            .map(|source| {
                let (ok, err, timeouts) = (ok.clone(), err.clone(), timeouts.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        match source.token().await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(authed::Error::Timeout { .. }) => {
                                timeouts.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => {
                                eprintln!("token error: {e}");
                                err.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        say(&format!(
            "STATS {} {} {}",
            ok.load(Ordering::Relaxed),
            err.load(Ordering::Relaxed),
            timeouts.load(Ordering::Relaxed)
        ));
    });
}

/// The parent side: starts the provider and `plan.processes` children made by `child`, and
/// collects what happened.
pub async fn run(
    redis_url: &str,
    plan: &Plan,
    child: impl Fn() -> tokio::process::Command,
) -> Outcome {
    let provider = TestProvider::start().await;
    provider.set_token_lifetime(plan.lifetime);
    let prefix = format!(
        "authed-fleet:{}:{}:",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    );
    let store = RedisStore::builder(redis_url)
        .prefix(&prefix)
        .build()
        .await
        .unwrap();
    // A login whose access token is long expired: the fleet's first move is a refresh.
    let login = Token::new(AccessToken::new("expired"))
        .with_lifetime(UNIX_EPOCH, Duration::from_secs(1))
        .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token())));
    store.save(LOGIN_KEY, &login).await.unwrap();

    let started = Instant::now();
    let mut children = Vec::new();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    for i in 0..plan.processes {
        let mut cmd = child();
        cmd.env("AUTHED_REDIS_URL", redis_url)
            .env("AUTHED_FLEET_PREFIX", &prefix)
            .env("AUTHED_TOKEN_URL", provider.token_url())
            .env("AUTHED_FLEET_GRANTS", plan.grants)
            .env(
                "AUTHED_FLEET_LOCK_TTL_MS",
                plan.lock_ttl.as_millis().to_string(),
            )
            .env(
                "AUTHED_FLEET_TIMEOUT_MS",
                plan.timeout.as_millis().to_string(),
            )
            .env(
                "AUTHED_FLEET_DURATION_MS",
                plan.duration.as_millis().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut process = cmd.spawn().expect("start a fleet child");
        let stdout = process.stdout.take().unwrap();
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send((i, line));
            }
        });
        children.push(process);
    }
    drop(lines_tx);

    let mut outcome = Outcome::default();
    let mut killed = None;
    let mut holder = None;
    let mut done = 0;
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    let mut kill_at: Option<(Instant, usize, String)> = None;
    // Let the fleet settle into its rhythm before the kill.
    let kill_after = started + plan.duration / 3;
    let mut armed_requests = None;
    let mut request_seen_at: Option<Instant> = None;
    while done < plan.processes {
        tokio::select! {
            line = lines.recv() => {
                let Some((i, line)) = line else { break };
                let line = line.trim();
                if line == "LOCKED" {
                    holder = Some(i);
                } else if line == "UNLOCKED" && holder == Some(i) {
                    holder = None;
                } else if let Some(stats) = line.strip_prefix("STATS ") {
                    let mut it = stats.split(' ').map(|n| n.parse::<u64>().unwrap());
                    outcome.tokens += it.next().unwrap();
                    outcome.errors += it.next().unwrap();
                    outcome.timeouts += it.next().unwrap();
                    done += 1;
                }
            }
            _ = poll.tick() => {
                if plan.kill_holder && killed.is_none() && Instant::now() >= kill_after {
                    match armed_requests {
                        // Slow the provider down, then wait for the next refresh to start.
                        None => {
                            provider.set_latency(plan.lock_ttl * 2);
                            armed_requests = Some(provider.token_requests());
                        }
                        Some(before) if provider.token_requests() > before => {
                            // A token request arrived: only the lock holder sends one. Give
                            // the stdout lines a moment to say who that is (the request
                            // takes twice the lock's lifetime), then kill it.
                            let seen = *request_seen_at.get_or_insert_with(Instant::now);
                            if let Some(i) = holder.filter(|_| seen.elapsed() >= Duration::from_millis(300)) {
                                children[i].start_kill().unwrap(); // SIGKILL
                                provider.set_latency(Duration::ZERO);
                                let spent = store.load(LOGIN_KEY).await.unwrap().unwrap();
                                killed = Some(i);
                                done += 1;
                                kill_at = Some((
                                    Instant::now(),
                                    provider.token_requests(),
                                    spent.access_token().secret().to_owned(),
                                ));
                            }
                        }
                        Some(_) => {}
                    }
                }
                if let Some((at, requests, spent)) = &kill_at {
                    if outcome.kill_to_next_request.is_none() && provider.token_requests() > *requests {
                        outcome.kill_to_next_request = Some(at.elapsed());
                    }
                    if outcome.kill_to_new_token.is_none() {
                        let now = store.load(LOGIN_KEY).await.unwrap().unwrap();
                        if now.access_token().secret() != spent {
                            outcome.kill_to_new_token = Some(at.elapsed());
                        }
                    }
                }
            }
        }
    }
    for (i, mut process) in children.into_iter().enumerate() {
        let status = process.wait().await.unwrap();
        if Some(i) != killed && !status.success() {
            outcome.failed_children += 1;
        }
    }
    outcome.elapsed = started.elapsed();
    for form in provider.token_forms() {
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => outcome.cc_requests += 1,
            Some("refresh_token") => outcome.refresh_requests += 1,
            _ => {}
        }
    }
    outcome.invalid_grants = provider.invalid_grants();
    let presented = provider.presented_refresh_tokens();
    let distinct: std::collections::HashSet<_> = presented.iter().collect();
    outcome.reused_refresh_tokens = presented.len() - distinct.len();
    // The cache refreshes once the token is within a quarter (early expiry) plus a quarter
    // (refresh ahead) of its lifetime: a new token every half lifetime.
    outcome.windows = plan.duration.as_secs_f64() / (plan.lifetime.as_secs_f64() / 2.0);
    outcome
}

impl Outcome {
    /// One line for logs and BENCHMARKS.md.
    pub fn summary(&self, plan: &Plan) -> String {
        format!(
            "{} processes, {:.0} s, lifetime {:?}, grants {}: {:.1} windows; token requests: {} client_credentials, {} refresh; invalid_grant {}; refresh tokens reused {}; token() calls {} ok, {} failed, {} timed out; failed children {}{}",
            plan.processes,
            self.elapsed.as_secs_f64(),
            plan.lifetime,
            plan.grants,
            self.windows,
            self.cc_requests,
            self.refresh_requests,
            self.invalid_grants,
            self.reused_refresh_tokens,
            self.tokens,
            self.errors,
            self.timeouts,
            self.failed_children,
            match (self.kill_to_next_request, self.kill_to_new_token) {
                (Some(r), Some(t)) => format!(
                    "; holder SIGKILLed mid-request, lock ttl {:?}: next token request after {:.2} s, new token saved after {:.2} s",
                    plan.lock_ttl,
                    r.as_secs_f64(),
                    t.as_secs_f64()
                ),
                _ if plan.kill_holder =>
                    "; KILL DID NOT HAPPEN OR FLEET DID NOT RECOVER".to_owned(),
                _ => String::new(),
            }
        )
    }
}

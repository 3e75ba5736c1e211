//! One process against the strict server: points 1 and 2, and the window that remains.

use std::sync::Arc;
use std::time::Duration;

use authed::{
    ClientAuthMethod, Error, FileStore, LostRefresh, OAuthConfig, TokenSource, TokenStore,
};

use crate::oidc;
use crate::processes::KEY;
use crate::proxy::Fault;
use crate::redis_server::RedisServer;

use crate::harness::*;

/// Point 1: the answer of a refresh that outlived the caller's timeout is read to the end and
/// its rotated refresh token saved; the next demand uses it without presenting the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_an_answer_that_comes_after_the_callers_timeout_is_saved_and_used() {
    let h = Harness::start(0).await;
    let dir = TempDir::new("late");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
    let source = h.source(store.clone(), Duration::from_secs(2)).await;
    h.proxy.script([Fault::Hold]);

    let first = source.token().await;
    assert!(
        first.is_err(),
        "the caller's timeout (2 s) must end its wait"
    );
    // The server answered long ago; the proxy passes the answer on only now, after the
    // caller gave up (and within the in-flight bound, twice the timeout).
    h.proxy.release();
    h.proxy
        .wait("the late answer to be passed on", |s| {
            s.refresh_delivered + s.client_gone >= 1
        })
        .await;
    let second = source.token().await;
    let counts = h.counts().await;
    report(
        "late answer",
        &counts,
        &format!("; first {}, second {}", kind(&first), kind(&second)),
    );
    assert!(
        second.is_ok(),
        "the late answer's token: {:?}",
        kind(&second)
    );
    assert_eq!(counts.presented, 1, "the refresh token was presented again");
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(counts.grant_alive, Some(true));
}

/// Point 2: an answer lost after the server processed the refresh (a gateway's 502 or 504, a
/// connection dropped or cut mid-body) is never retried with the same refresh token within
/// the call. On a strict server the login is then lost (the server rotated, and nobody has
/// the new refresh token): the next demand presents the old one once more (in case the
/// server never got the request), which costs exactly one `invalid_grant`, and the login
/// ends in one typed re-authorize error that says the outcome was unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_a_lost_answer_is_never_retried_in_the_call_and_ends_in_one_typed_error() {
    let mut failures = Vec::new();
    for fault in [
        Fault::Replace(502),
        Fault::Replace(504),
        Fault::Drop,
        Fault::CutMidBody,
    ] {
        let h = Harness::start(0).await;
        let dir = TempDir::new("lost");
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
        let source = h.source(store.clone(), Duration::from_secs(1)).await;
        h.proxy.script([fault.clone()]);

        let first = source.token().await;
        let in_call = h.counts().await;
        let (second, _) = settle(&source).await;
        let third = source.token().await;
        let counts = h.counts().await;
        let line = format!(
            "{fault:?}: first call {} presenting {}x; then {} and {}; presented {} in all, invalid_grant {}, stored login {}",
            kind(&first),
            in_call.presented,
            kind(&second),
            kind(&third),
            counts.presented,
            counts.invalid_grant,
            if store.load(KEY).await.unwrap().is_some() {
                "kept"
            } else {
                "removed"
            },
        );
        eprintln!("{line}");
        let second_reauth = second
            .as_ref()
            .err()
            .is_some_and(Error::requires_reauthorization);
        let ok = first.is_err()
            && in_call.presented == 1
            && kind(&second) == "refresh_outcome_unknown"
            && second_reauth
            && kind(&third) == "refresh_outcome_unknown"
            && counts.presented == 2
            && counts.invalid_grant == 1;
        if !ok {
            failures.push(line);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Point 2, the other side: a gateway that never reached the server (502 without forwarding)
/// also loses the answer; the next demand's one more presentation finds the refresh token
/// still good, and the login lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_when_the_server_never_got_the_request_the_next_demand_recovers() {
    let h = Harness::start(0).await;
    let dir = TempDir::new("unreachable");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
    let source = h.source(store, Duration::from_secs(1)).await;
    h.proxy.script([Fault::Unreachable(502)]);
    let first = source.token().await;
    let (last, _) = settle(&source).await;
    let counts = h.counts().await;
    report(
        "unreachable",
        &counts,
        &format!("; first {}, then {}", kind(&first), kind(&last)),
    );
    assert!(last.is_ok(), "{}", kind(&last));
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(counts.presented, 1);
    assert_eq!(counts.grant_alive, Some(true));
}

/// Point 2 with a grace period (Okta, Auth0): the server accepts the spent refresh token once
/// more for 30 s, so the next demand presents it again at once and the login lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_with_a_reuse_grace_period_the_next_demand_recovers_the_login() {
    let mut failures = Vec::new();
    for fault in [Fault::Replace(502), Fault::Drop] {
        let h = Harness::start(30).await;
        let dir = TempDir::new("grace");
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
        let source = h
            .config_with(
                Duration::from_secs(1),
                LostRefresh::RetryWithinGrace(Duration::from_secs(30)),
            )
            .refresh_token_source()
            .store(store)
            .key(KEY)
            .from_token(h.login.expired_token())
            .await
            .unwrap();
        h.proxy.script([fault.clone()]);
        let first = source.token().await;
        let (second, _) = settle(&source).await;
        let counts = h.counts().await;
        let line = format!(
            "{fault:?} (grace 30 s): first {}, second {}; presented {}, invalid_grant {}, alive {:?}",
            kind(&first),
            kind(&second),
            counts.presented,
            counts.invalid_grant,
            counts.grant_alive
        );
        eprintln!("{line}");
        if !(second.is_ok() && counts.invalid_grant == 0 && counts.grant_alive == Some(true)) {
            failures.push(line);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Point 2, configured never to present again (`LostRefresh::SignInAgain`): a lost answer
/// ends the login in the typed error, and no `invalid_grant` reaches the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_never_presenting_a_lost_refresh_token_again_costs_no_invalid_grant() {
    let h = Harness::start(0).await;
    let dir = TempDir::new("never");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
    let source = h
        .config_with(Duration::from_secs(1), LostRefresh::SignInAgain)
        .refresh_token_source()
        .store(store)
        .key(KEY)
        .from_token(h.login.expired_token())
        .await
        .unwrap();
    h.proxy.script([Fault::Replace(502)]);
    let first = source.token().await;
    let (second, _) = settle(&source).await;
    let counts = h.counts().await;
    report(
        "sign in again",
        &counts,
        &format!("; first {}, then {}", kind(&first), kind(&second)),
    );
    assert_eq!(kind(&second), "refresh_outcome_unknown");
    assert_eq!(counts.presented, 1);
    assert_eq!(counts.invalid_grant, 0);
}

/// The one window no client can close, measured: from the server's answer (as it leaves the
/// proxy in front of the server) to the rotated refresh token being durable in the store. A
/// holder killed inside it, on a server without a grace period, loses the login (the test
/// above shows what it then costs). Printed for ARCHITECTURE.md; asserted only in counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_the_window_between_rotation_and_save_measured() {
    let h = Harness::start(0).await;
    let dir = TempDir::new("window");
    let redis = RedisServer::start();
    let file: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
    let redis_store: Arc<dyn TokenStore> = Arc::new(
        authed::RedisStore::builder(redis.url())
            .prefix("window:")
            .build()
            .await
            .unwrap(),
    );
    const ROUNDS: usize = 30;
    let mut lines = Vec::new();
    for (name, inner) in [("FileStore", file), ("RedisStore", redis_store)] {
        let login = h.server.login("user-1").await;
        let saved = Arc::new(std::sync::Mutex::new(Vec::new()));
        let store: Arc<dyn TokenStore> = Arc::new(Timed {
            inner,
            saved: saved.clone(),
        });
        let clock = authed::testing::ManualClock::new(std::time::SystemTime::now());
        let source = OAuthConfig::builder(h.proxy.url("/token"))
            .client_id(oidc::CLIENT_ID)
            .client_secret(oidc::CLIENT_SECRET)
            .auth_method(ClientAuthMethod::ClientSecretPost)
            .clock(clock.clone())
            .build()
            .unwrap()
            .refresh_token_source()
            .store(store)
            .key(KEY)
            .from_token(login.expired_token())
            .await
            .unwrap();
        let answered_before = h.proxy.seen().answered_at.len();
        for _ in 0..ROUNDS {
            source.token().await.unwrap();
            clock.advance(Duration::from_secs(7200));
        }
        let answered = h.proxy.seen().answered_at[answered_before..].to_vec();
        let saved = saved.lock().unwrap().clone();
        assert_eq!(answered.len(), ROUNDS);
        assert_eq!(saved.len(), ROUNDS, "every rotation saved once");
        let mut windows: Vec<Duration> = answered
            .iter()
            .zip(&saved)
            .map(|(a, s)| s.saturating_duration_since(*a))
            .collect();
        windows.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        lines.push(format!(
            "{name}: rotation to durable save over {ROUNDS} refreshes: median {:.2} ms, 90th {:.2} ms, max {:.2} ms",
            ms(windows[ROUNDS / 2]),
            ms(windows[ROUNDS * 9 / 10]),
            ms(windows[ROUNDS - 1])
        ));
    }
    let counts = h.server.rotation(None).await;
    for line in &lines {
        eprintln!("window: {line}");
    }
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(counts.presented_again, 0);
}

/// A store that notes when each save of a rotated refresh token (a new one) was durable.
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn TokenStore>,
    saved: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
}

impl TokenStore for Timed {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> authed::BoxFuture<'a, Result<Option<authed::Token>, Error>> {
        self.inner.load(key)
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a authed::Token,
    ) -> authed::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let before = self.inner.load(key).await?;
            self.inner.save(key, token).await?;
            let rotated = before.is_some_and(|b| b.refresh_token() != token.refresh_token());
            if rotated {
                self.saved.lock().unwrap().push(tokio::time::Instant::now());
            }
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> authed::BoxFuture<'a, Result<(), Error>> {
        self.inner.delete(key)
    }
    fn lock<'a>(&'a self, key: &'a str) -> authed::BoxFuture<'a, Result<authed::StoreLock, Error>> {
        self.inner.lock(key)
    }
    fn lock_is_held<'a>(&'a self, key: &'a str) -> authed::BoxFuture<'a, Result<bool, Error>> {
        self.inner.lock_is_held(key)
    }
}

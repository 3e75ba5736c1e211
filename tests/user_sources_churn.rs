//! Issue 17, point 6: `UserSources` never has two live sources of one login refreshing at
//! once, whatever the store. Many users, few held in memory (constant eviction and reloads),
//! requests and refreshes running all the while, the clock jumping so that every login comes
//! due again and again; every token handed out is its own user's, and no refresh token is
//! presented twice.
//!
//! MemoryStore and FileStore here; RedisStore (AUTHED_REDIS_URL) and KeyringStore
//! (AUTHED_KEYRING_BACKENDS with `kernel`) when scripts/stores provides them.

#[cfg(feature = "redis")]
#[path = "support/redis.rs"]
mod redis_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{AccessToken, MemoryStore, RefreshToken, Token, TokenStore, UserSources};

const USERS: usize = 40;
const MAX_IN_MEMORY: usize = 6;
const WORKERS: usize = 8;

struct Churned {
    requests: usize,
    refreshes: usize,
    reused: usize,
    invalid_grants: usize,
    wrong_user: usize,
    errors: Vec<String>,
    most_in_memory: usize,
    /// Users whose login is not in the store at the end, or whose stored refresh token the
    /// provider no longer accepts.
    lost: usize,
}

/// `requests` per worker: fewer for stores whose every write is an fsync.
async fn churn(name: &str, store: Arc<dyn TokenStore>, requests: usize) -> Churned {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    // Each user signed in: a login whose access token is already due.
    for u in 0..USERS {
        let login = Token::new(AccessToken::new(format!("initial-{u}")))
            .with_lifetime(
                clock_now(&clock) - Duration::from_secs(7200),
                Duration::from_secs(3600),
            )
            .with_refresh_token(Some(RefreshToken::new(
                provider.issue_refresh_token_for(&format!("user-{u}")),
            )));
        config
            .refresh_token_source()
            .store(store.clone())
            .key(format!("user:{u}"))
            .from_token(login)
            .await
            .unwrap();
    }
    let users = UserSources::builder(config, store.clone())
        .max_users(MAX_IN_MEMORY)
        .build();
    let provider = Arc::new(provider);
    let most = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (users, provider, most) = (users.clone(), provider.clone(), most.clone());
            let clock = clock.clone();
            tokio::spawn(async move {
                let mut wrong = 0;
                let mut errors = Vec::new();
                for n in 0..requests {
                    let u = (w * 7 + n * 13) % USERS;
                    let key = format!("user:{u}");
                    if n % 8 == 0 {
                        // Every login comes due again, while other requests and refreshes
                        // run: refreshes in flight while sources are dropped and reloaded.
                        clock.advance(Duration::from_secs(1800));
                    }
                    if n % 10 == 3 {
                        // Dropped from memory with its work possibly in flight.
                        users.remove(&key);
                    }
                    let source = match users.get(&key).await {
                        Ok(Some(source)) => source,
                        other => {
                            errors.push(format!("get {key}: {other:?}"));
                            continue;
                        }
                    };
                    most.fetch_max(users.len(), Ordering::SeqCst);
                    match authed::TokenSource::token(&source).await {
                        Ok(token) => {
                            let sub = provider.subject_of(token.access_token().secret());
                            let fresh = token.access_token().secret().starts_with("initial-");
                            if !fresh && sub.as_deref() != Some(format!("user-{u}").as_str()) {
                                wrong += 1;
                            }
                        }
                        Err(e) => errors.push(format!("token {key}: {e}")),
                    }
                }
                (wrong, errors)
            })
        })
        .collect();
    let mut wrong_user = 0;
    let mut errors = Vec::new();
    for w in workers {
        let (wrong, errs) = w.await.unwrap();
        wrong_user += wrong;
        errors.extend(errs);
    }
    // Eviction never touches the store: every login is there, with a live refresh token.
    let mut lost = 0;
    for u in 0..USERS {
        let stored = store.load(&format!("user:{u}")).await.ok().flatten();
        let live = stored
            .as_ref()
            .and_then(|t| t.refresh_token())
            .is_some_and(|rt| provider.refresh_token_is_live(rt.secret()));
        if !live {
            lost += 1;
        }
    }
    let presented = provider.presented_refresh_tokens();
    let distinct: HashSet<_> = presented.iter().collect();
    let churned = Churned {
        requests: WORKERS * requests,
        refreshes: presented.len(),
        reused: presented.len() - distinct.len(),
        invalid_grants: provider.invalid_grants(),
        wrong_user,
        errors,
        most_in_memory: most.load(Ordering::SeqCst),
        lost,
    };
    eprintln!(
        "{name}: {} users, at most {MAX_IN_MEMORY} in memory (seen {}), {} requests, {} refreshes, refresh tokens presented twice {}, invalid_grant {}, tokens of another user {}, errors {}, logins lost {}",
        USERS,
        churned.most_in_memory,
        churned.requests,
        churned.refreshes,
        churned.reused,
        churned.invalid_grants,
        churned.wrong_user,
        churned.errors.len(),
        churned.lost
    );
    churned
}

fn clock_now(clock: &ManualClock) -> SystemTime {
    authed::Clock::now(clock)
}

fn check(c: &Churned) {
    assert!(
        c.refreshes >= USERS,
        "the churn refreshed too little to show anything"
    );
    assert_eq!(c.reused, 0, "refresh tokens presented twice");
    assert_eq!(c.invalid_grants, 0);
    assert_eq!(c.wrong_user, 0, "a request carried another user's token");
    assert!(
        c.errors.is_empty(),
        "{:#?}",
        &c.errors[..c.errors.len().min(5)]
    );
    assert!(c.most_in_memory <= MAX_IN_MEMORY);
    assert_eq!(
        c.lost, 0,
        "logins missing from the store or dead at the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_memory_store() {
    check(&churn("MemoryStore", Arc::new(MemoryStore::new()), 150).await);
}

#[cfg(feature = "file-store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_file_store() {
    let dir = std::env::temp_dir().join(format!(
        "authed-churn-{}-{}",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    ));
    let store = Arc::new(authed::FileStore::new(dir.join("tokens.json")));
    let churned = churn("FileStore", store, 40).await;
    let _ = std::fs::remove_dir_all(&dir);
    check(&churned);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_redis_store() {
    let Some(url) = redis_support::redis_url() else {
        return;
    };
    let store = authed::RedisStore::builder(url)
        .prefix(redis_support::unique_prefix("churn"))
        .build()
        .await
        .unwrap();
    check(&churn("RedisStore", Arc::new(store), 100).await);
}

#[cfg(all(feature = "keyring", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_keyring_store() {
    let backends = std::env::var("AUTHED_KEYRING_BACKENDS").unwrap_or_default();
    if !backends.split_whitespace().any(|b| b == "kernel") {
        eprintln!(
            "skipped: AUTHED_KEYRING_BACKENDS has no kernel keyring (scripts/stores sets it)"
        );
        return;
    }
    let service = format!(
        "authed-churn-{}-{}",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    );
    let store = authed::KeyringStore::kernel_keyring(service);
    check(&churn("KeyringStore", Arc::new(store), 60).await);
}

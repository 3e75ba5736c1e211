//! RedisStore against a real redis-server (started by scripts/stores, address in
//! `AUTHED_REDIS_URL`): the conformance suite, and the refresh lock's expiry, renewal,
//! fencing and bounded waits.
#![cfg(feature = "redis")]

#[path = "support/redis.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authed::testing::{
    TestProvider, store_conformance, store_lock_conformance, store_lock_timeout_conformance,
};
use authed::{AccessToken, RedisStore, RefreshToken, Token, TokenSource, TokenStore};
use support::{raw, redis_key, redis_url, unique_prefix};

fn token(n: u32) -> Token {
    Token::new(AccessToken::new(format!("at-{n}")))
        .with_refresh_token(Some(RefreshToken::new(format!("rt-{n}"))))
}

async fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .lock_ttl(Duration::from_secs(5))
        .lock_wait(Duration::from_secs(20))
        .build()
        .await
        .expect("connect to redis")
}

macro_rules! redis_or_skip {
    () => {
        match redis_url() {
            Some(url) => url,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_store_conformance_suite() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("conformance");
    let store = Arc::new(store(&url, &prefix).await);
    store_conformance(store.clone()).await;
    store_lock_conformance(store).await;
    let bounded = RedisStore::builder(&url)
        .prefix(&prefix)
        .lock_wait(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    store_lock_timeout_conformance(Arc::new(bounded), Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_exclude_each_other_like_two_processes() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("two-handles");
    // Two connections: what two replicas see.
    let a = store(&url, &prefix).await;
    let b = store(&url, &prefix).await;
    let held = a.lock("k").await.unwrap();
    let waiting = tokio::spawn(async move { b.lock("k").await.map(drop) });
    // Waits for an event (the lock key) rather than a duration.
    assert_ne!(raw(&url, &["GET", &redis_key(&prefix, "k", "lock")]), "nil");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a second replica got a held lock");
    drop(held);
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the lock was not handed over after release")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lock_expires_by_itself() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("crashed");
    // A holder that took the lock and died: nobody renews or releases it.
    raw(
        &url,
        &["SET", &redis_key(&prefix, "k", "lock"), "1", "PX", "700"],
    );
    let s = store(&url, &prefix).await;
    let started = Instant::now();
    let lock = s
        .lock("k")
        .await
        .expect("the dead holder's lock must expire");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "waited {:?}",
        started.elapsed()
    );
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_are_bounded_and_end_with_a_lock_timeout() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("bounded");
    raw(
        &url,
        &["SET", &redis_key(&prefix, "k", "lock"), "1", "PX", "600000"],
    );
    let s = RedisStore::builder(&url)
        .prefix(&prefix)
        .lock_wait(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let e = s
        .lock("k")
        .await
        .expect_err("a held lock must not be granted");
    // The TokenStore contract: a lock wait that runs out is LockTimeout (issue 17, point 9).
    assert!(matches!(e, authed::Error::LockTimeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    // A write that must take the lock (a new sign-in's save) is bounded the same way, and
    // writes nothing.
    let e = s
        .save("k", &token(1))
        .await
        .expect_err("save must wait for the lock");
    assert!(matches!(e, authed::Error::LockTimeout { .. }), "{e:?}");
    assert_eq!(
        raw(&url, &["EXISTS", &redis_key(&prefix, "k", "token")]),
        "0"
    );
    raw(&url, &["DEL", &redis_key(&prefix, "k", "lock")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_waiting_lock_future_stops_the_wait() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("cancel");
    let lock_key = redis_key(&prefix, "k", "lock");
    raw(&url, &["SET", &lock_key, "1", "PX", "600000"]);
    let s = store(&url, &prefix).await;
    let waited = tokio::time::timeout(Duration::from_millis(200), s.lock("k")).await;
    assert!(
        waited.is_err(),
        "the lock is held: the wait must still be going"
    );
    // The foreign holder leaves; a cancelled waiter must not grab the lock afterwards.
    raw(&url, &["DEL", &lock_key]);
    let other = store(&url, &prefix).await;
    let lock = other.lock("k").await.unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Still ours: nobody else took it.
        other
            .save("k", &token(1))
            .await
            .expect("the lock is still ours");
    }
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_renewed_while_its_holder_works() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("renewed");
    let lock_key = redis_key(&prefix, "k", "lock");
    let s = RedisStore::builder(&url)
        .prefix(&prefix)
        .lock_ttl(Duration::from_millis(1500))
        .build()
        .await
        .unwrap();
    let lock = s.lock("k").await.unwrap();
    let fence = raw(&url, &["GET", &lock_key]);
    // Renewals push the expiry back: wait until that has happened three times, i.e. the
    // lock outlived its own time to live, and it is the same grant of the lock throughout.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: i64 = raw(&url, &["PTTL", &lock_key]).parse().unwrap();
    let mut renewals = 0;
    let started = Instant::now();
    while renewals < 3 || started.elapsed() < Duration::from_millis(1500) {
        assert!(Instant::now() < deadline, "the lock was not renewed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pttl: i64 = raw(&url, &["PTTL", &lock_key]).parse().unwrap();
        assert!(pttl > 0, "the lock expired while held ({pttl})");
        if pttl > last {
            renewals += 1;
        }
        last = pttl;
    }
    assert_eq!(raw(&url, &["GET", &lock_key]), fence);
    s.save("k", &token(1))
        .await
        .expect("save under a renewed lock");
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lock_expired_cannot_overwrite_a_newer_token() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("fenced");
    let lock_key = redis_key(&prefix, "k", "lock");
    let slow = store(&url, &prefix).await;
    let fast = store(&url, &prefix).await;

    let slow_lock = slow.lock("k").await.unwrap();
    assert!(slow.lock_is_held("k").await.unwrap());
    // The slow holder stalls past its lock's lifetime (a GC pause, a stopped process): the
    // lock is gone, as if it had expired unrenewed.
    raw(&url, &["DEL", &lock_key]);
    // Right before it would send a refresh, it asks, and learns (issue 17, point 4).
    assert!(
        !slow.lock_is_held("k").await.unwrap(),
        "a lost lease must show"
    );
    assert!(
        !fast.lock_is_held("k").await.unwrap(),
        "a handle without the lock holds none"
    );
    // Another replica takes the lock and saves a newer token.
    let fast_lock = fast.lock("k").await.unwrap();
    fast.save("k", &token(2)).await.unwrap();

    // The slow holder wakes up and tries to save what it fetched, while the other holds the
    // lock and after it released it: both are refused, and the newer token stays.
    let e = slow
        .save("k", &token(1))
        .await
        .expect_err("fenced while the other holds it");
    assert!(matches!(e, authed::Error::Store(_)), "{e:?}");
    drop(fast_lock);
    let e = slow
        .save("k", &token(1))
        .await
        .expect_err("fenced after the other released it");
    assert!(matches!(e, authed::Error::Store(_)), "{e:?}");
    assert!(
        slow.delete("k").await.is_err(),
        "a stale holder must not delete"
    );
    assert!(
        slow.delete_if_refresh_token("k", &RefreshToken::new("rt-2"))
            .await
            .is_err(),
        "a stale holder must not compare-and-delete"
    );
    assert_eq!(fast.load("k").await.unwrap(), Some(token(2)));
    drop(slow_lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fence_cannot_overwrite_a_token_written_under_a_newer_one() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("fence-order");
    let lock_key = redis_key(&prefix, "k", "lock");
    let s = store(&url, &prefix).await;
    let newer = store(&url, &prefix).await;
    let old_lock = s.lock("k").await.unwrap();
    let old_fence = raw(&url, &["GET", &lock_key]);
    raw(&url, &["DEL", &lock_key]);
    newer.save("k", &token(2)).await.unwrap();
    // Even if the old fence were somehow current again (a failover that lost the lock key
    // but not the data), the token written under a newer fence wins.
    raw(&url, &["SET", &lock_key, &old_fence, "PX", "5000"]);
    assert!(s.save("k", &token(1)).await.is_err());
    assert_eq!(newer.load("k").await.unwrap(), Some(token(2)));
    raw(&url, &["DEL", &lock_key]);
    drop(old_lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_delete_removes_only_the_rejected_login() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("cad");
    let s = store(&url, &prefix).await;
    s.save("k", &token(2)).await.unwrap();
    // The rejected refresh token is not the stored one: a newer login survives.
    assert!(
        !s.delete_if_refresh_token("k", &RefreshToken::new("rt-1"))
            .await
            .unwrap()
    );
    assert_eq!(s.load("k").await.unwrap(), Some(token(2)));
    // Under the lock, as the cache calls it.
    let lock = s.lock("k").await.unwrap();
    assert!(
        s.delete_if_refresh_token("k", &RefreshToken::new("rt-2"))
            .await
            .unwrap()
    );
    drop(lock);
    assert_eq!(s.load("k").await.unwrap(), None);
    // Nothing stored, or a login without a refresh token: nothing to delete.
    assert!(
        !s.delete_if_refresh_token("k", &RefreshToken::new("rt-2"))
            .await
            .unwrap()
    );
    s.save("k", &Token::new(AccessToken::new("no-rt")))
        .await
        .unwrap();
    assert!(
        !s.delete_if_refresh_token("k", &RefreshToken::new(""))
            .await
            .unwrap()
    );
    assert!(s.load("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_redis_store_refresh_once_and_never_reuse_a_refresh_token() {
    let url = redis_or_skip!();
    let prefix = unique_prefix("replicas");
    let provider = TestProvider::start().await;
    provider.set_latency(Duration::from_millis(20));
    let seed = store(&url, &prefix).await;
    seed.save(
        "login",
        &Token::new(AccessToken::new("initial"))
            .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token()))),
    )
    .await
    .unwrap();

    // Eight replicas (each its own connection and cache) all find the stored token spent.
    let mut replicas = Vec::new();
    for _ in 0..8 {
        let store: Arc<dyn TokenStore> = Arc::new(store(&url, &prefix).await);
        let login = provider
            .config(None)
            .refresh_token_source()
            .store(store)
            .key("login")
            .from_store()
            .await
            .unwrap()
            .unwrap();
        replicas.push(login);
    }
    let first = replicas[0].token().await.unwrap();
    for round in 0..5 {
        let current = replicas[round % replicas.len()].token().await.unwrap();
        let rejected = join_all(replicas.iter().map(|r| {
            let (r, current) = (r.clone(), current.clone());
            async move { r.token_rejected(&current).await.map(drop) }
        }))
        .await;
        for r in rejected {
            r.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    assert_ne!(
        first.access_token(),
        replicas[0].token().await.unwrap().access_token()
    );
    assert_eq!(provider.invalid_grants(), 0);
    let presented = provider.presented_refresh_tokens();
    let distinct: std::collections::HashSet<_> = presented.iter().collect();
    assert_eq!(
        distinct.len(),
        presented.len(),
        "a refresh token was spent twice"
    );
    // One refresh per round for the whole fleet: the others re-read the store under the lock.
    assert_eq!(presented.len(), 5, "{presented:?}");
    let last = seed.load("login").await.unwrap().unwrap();
    assert!(provider.refresh_token_is_live(last.refresh_token().unwrap().secret()));
}

/// Runs the futures as tasks, concurrently.
async fn join_all<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

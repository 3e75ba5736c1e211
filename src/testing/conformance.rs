//! The behaviour every [`TokenStore`] must have, as one test suite.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::store::TokenStore;
use crate::token::{AccessToken, IdToken, RefreshToken, Token};

fn sample(n: u32) -> Token {
    let mut extra = serde_json::Map::new();
    extra.insert("n".to_owned(), n.into());
    extra.insert(
        "nested".to_owned(),
        serde_json::json!({"a": [1, "two", null]}),
    );
    Token::new(AccessToken::new(format!("at-{n}")))
        .with_token_type("Bearer")
        .with_lifetime(
            UNIX_EPOCH + Duration::from_secs(1_700_000_000 + u64::from(n)),
            Duration::from_secs(3600),
        )
        .with_refresh_token(Some(RefreshToken::new(format!("rt-{n}"))))
        .with_id_token(Some(IdToken::new(format!("id-{n}"))))
        .with_scopes(Some(vec!["openid".to_owned(), "email".to_owned()]))
        .with_extra(extra)
}

/// Runs the store conformance suite against `store`, panicking with a description of the
/// first requirement it breaks. Call it from a test of your own [`TokenStore`]:
///
/// ```no_run
/// # async fn run() {
/// authed::testing::store_conformance(std::sync::Arc::new(authed::MemoryStore::new())).await;
/// # }
/// ```
///
/// It checks, on keys prefixed `authed-conformance/` (which it deletes again): loading a
/// missing key gives `None`; a saved token loads back equal in every field (refresh token, ID
/// token, scopes, extra fields, times to the second); saving replaces; keys are independent,
/// including long, Unicode and path-like ones; deleting removes, and deleting nothing is not an
/// error; concurrent saves of different keys are all kept; `save`, `load` and `delete`
/// work while the key's [`lock`](TokenStore::lock) is held (the token cache saves under it);
/// and [`delete_if_refresh_token`](TokenStore::delete_if_refresh_token) deletes only a login
/// that still holds the rejected refresh token (a newer login survives; a missing key is
/// `false`, not an error), also under the lock.
///
/// # Panics
///
/// When the store breaks a requirement, or returns an error.
pub async fn store_conformance(store: Arc<dyn TokenStore>) {
    const P: &str = "authed-conformance/";
    let key = format!("{P}basic");
    let ok = |what: &str, r: Result<(), crate::Error>| {
        if let Err(e) = r {
            panic!("store conformance: {what} failed: {e}");
        }
    };
    let load = |k: String| {
        let store = store.clone();
        async move {
            store
                .load(&k)
                .await
                .unwrap_or_else(|e| panic!("store conformance: load failed: {e}"))
        }
    };

    assert!(
        load(format!("{P}missing")).await.is_none(),
        "store conformance: a key never saved must load as None"
    );

    let token = sample(1);
    ok("save", store.save(&key, &token).await);
    let back = load(key.clone())
        .await
        .expect("store conformance: a saved token must load");
    assert!(
        back == token,
        "store conformance: a token must load back equal in every field"
    );
    assert_eq!(
        back.refresh_token().map(|r| r.secret()),
        Some("rt-1"),
        "store conformance: refresh token lost"
    );
    assert_eq!(
        back.expires_at(),
        token.expires_at(),
        "store conformance: expiry changed"
    );

    let newer = sample(2);
    ok("save over an existing key", store.save(&key, &newer).await);
    assert!(
        load(key.clone()).await == Some(newer.clone()),
        "store conformance: saving must replace the previous token"
    );

    let odd_keys = [
        format!("{P}{}", "k".repeat(2000)),
        format!("{P}ünïcødé/键/🔑"),
        format!("{P}../../etc/passwd"),
        format!("{P}with spaces and \"quotes\" and \\ and \n newline"),
    ];
    for (i, k) in odd_keys.iter().enumerate() {
        ok(
            "save under an unusual key",
            store.save(k, &sample(10 + i as u32)).await,
        );
    }
    for (i, k) in odd_keys.iter().enumerate() {
        assert!(
            load(k.clone()).await == Some(sample(10 + i as u32)),
            "store conformance: keys must be independent (key #{i})"
        );
    }
    assert!(
        load(key.clone()).await == Some(newer.clone()),
        "store conformance: saving other keys changed this one"
    );

    ok("delete", store.delete(&key).await);
    assert!(
        load(key.clone()).await.is_none(),
        "store conformance: a deleted key must load as None"
    );
    ok("delete of a missing key", store.delete(&key).await);
    for (i, k) in odd_keys.iter().enumerate() {
        assert!(
            load(k.clone()).await.is_some(),
            "store conformance: deleting one key removed another (key #{i})"
        );
        ok("delete", store.delete(k).await);
    }

    let tasks: Vec<_> = (0..16u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .save(&format!("{P}concurrent-{i}"), &sample(100 + i))
                    .await
            })
        })
        .collect();
    for t in tasks {
        ok("concurrent save", t.await.expect("save task panicked"));
    }
    for i in 0..16u32 {
        let k = format!("{P}concurrent-{i}");
        assert!(
            load(k.clone()).await == Some(sample(100 + i)),
            "store conformance: concurrent saves of different keys lost key {i}"
        );
        ok("delete", store.delete(&k).await);
    }

    let lock = tokio::time::timeout(Duration::from_secs(10), store.lock(&key))
        .await
        .expect("store conformance: lock() must not hang when nobody holds the lock")
        .unwrap_or_else(|e| panic!("store conformance: lock failed: {e}"));
    let under_lock = async {
        match store.lock_is_held(&key).await {
            Ok(true) => {}
            Ok(false) => {
                panic!("store conformance: lock_is_held must be true while the lock is held")
            }
            Err(e) => panic!("store conformance: lock_is_held failed: {e}"),
        }
        ok("save while locked", store.save(&key, &token).await);
        assert!(
            load(key.clone()).await == Some(token.clone()),
            "store conformance: load under the lock"
        );
        ok("delete while locked", store.delete(&key).await);
    };
    tokio::time::timeout(Duration::from_secs(10), under_lock)
        .await
        .expect("store conformance: save/load/delete must work while the key's lock is held (the cache saves under it)");
    drop(lock);

    // Compare-and-delete: a newer login (another refresh token) survives a rejection of
    // the old one; the rejected one itself is deleted.
    let cad_key = format!("{P}compare-and-delete");
    let cad = |rejected: &'static str| {
        let (store, k) = (store.clone(), cad_key.clone());
        async move {
            let lock = store
                .lock(&k)
                .await
                .unwrap_or_else(|e| panic!("store conformance: lock failed: {e}"));
            let deleted = store
                .delete_if_refresh_token(&k, &RefreshToken::new(rejected))
                .await
                .unwrap_or_else(|e| {
                    panic!("store conformance: delete_if_refresh_token failed: {e}")
                });
            drop(lock);
            deleted
        }
    };
    assert!(
        !cad("rt-1").await,
        "store conformance: delete_if_refresh_token of a missing key must be false"
    );
    ok("save", store.save(&cad_key, &sample(2)).await);
    assert!(
        !cad("rt-1").await,
        "store conformance: delete_if_refresh_token must report false for another refresh token"
    );
    assert!(
        load(cad_key.clone()).await == Some(sample(2)),
        "store conformance: delete_if_refresh_token deleted a newer login"
    );
    assert!(
        cad("rt-2").await,
        "store conformance: delete_if_refresh_token must delete the login holding the rejected refresh token"
    );
    assert!(
        load(cad_key.clone()).await.is_none(),
        "store conformance: delete_if_refresh_token reported true but the login is still there"
    );

    let again = tokio::time::timeout(Duration::from_secs(10), store.lock(&key))
        .await
        .expect("store conformance: a dropped lock must be released");
    drop(again);
}

/// Checks that [`TokenStore::lock`] excludes: while one guard is held, a second `lock` of the
/// same key waits until it is dropped. For stores that promise cross-process locking.
///
/// # Panics
///
/// When the second lock is granted while the first is held, or is not granted after it is
/// released.
pub async fn store_lock_conformance(store: Arc<dyn TokenStore>) {
    let key = "authed-conformance/lock";
    let first = store
        .lock(key)
        .await
        .expect("store lock conformance: lock failed");
    let second = {
        let store = store.clone();
        tokio::spawn(async move { store.lock(key).await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "store lock conformance: a second lock was granted while the first was held"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("store lock conformance: the lock was not granted after release")
        .expect("lock task panicked")
        .expect("store lock conformance: second lock failed");
}

/// Checks that a [`TokenStore::lock`] wait is bounded as the contract says: while one guard
/// is held, a second `lock` of the same key fails with [`Error::LockTimeout`](crate::Error::LockTimeout)
/// (not another error) once `wait` has passed, the bound you configured the store with; after
/// the first guard is dropped, the lock is granted again. Call it with a store configured
/// with a short wait (a few hundred milliseconds).
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use std::{sync::Arc, time::Duration};
/// let store = authed::FileStore::new("/tmp/conformance.json").lock_timeout(Duration::from_millis(300));
/// authed::testing::store_lock_timeout_conformance(Arc::new(store), Duration::from_millis(300)).await;
/// # Ok(()) }
/// ```
///
/// # Panics
///
/// When the second lock is granted while the first is held, fails with another error, gives
/// up much earlier than `wait`, or does not give up at all.
pub async fn store_lock_timeout_conformance(store: Arc<dyn TokenStore>, wait: Duration) {
    let key = "authed-conformance/lock-timeout";
    let first = store
        .lock(key)
        .await
        .expect("store lock timeout conformance: lock failed");
    let started = tokio::time::Instant::now();
    // Generous: the bound only keeps a broken store from hanging the suite.
    let second = tokio::time::timeout(wait + Duration::from_secs(30), store.lock(key))
        .await
        .expect("store lock timeout conformance: a lock wait did not end after its bound");
    let waited = started.elapsed();
    match second {
        Ok(_) => panic!(
            "store lock timeout conformance: a second lock was granted while the first was held"
        ),
        Err(crate::Error::LockTimeout { .. }) => {}
        Err(e) => panic!(
            "store lock timeout conformance: a lock wait that ran out must be Error::LockTimeout, got {e:?}"
        ),
    }
    assert!(
        waited >= wait.mul_f64(0.9),
        "store lock timeout conformance: gave up after {waited:?}, before the bound {wait:?}"
    );
    drop(first);
    let again = tokio::time::timeout(Duration::from_secs(10), store.lock(key))
        .await
        .expect("store lock timeout conformance: the lock was not granted after release")
        .expect("store lock timeout conformance: lock after release failed");
    drop(again);
}

//! FileStore, MemoryStore and ObservedStore against the store conformance suite, plus the
//! file's format and permissions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authed::testing::{store_conformance, store_lock_conformance, store_lock_timeout_conformance};
use authed::{AccessToken, Error, FileStore, MemoryStore, ObservedStore, Token, TokenStore};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "authed-{name}-{}-{}",
            std::process::id(),
            oauth2::CsrfToken::new_random().secret()
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn memory_store_conforms_and_its_lock_excludes() {
    store_conformance(Arc::new(MemoryStore::new())).await;
    // Issue 17, point 6: MemoryStore locks per key as the shared stores do.
    store_lock_conformance(Arc::new(MemoryStore::new())).await;
}

/// The lock a store gets by default (within this process, per store and key) excludes and is
/// bounded: a lock wait that runs out is LockTimeout (issue 17, points 6 and 9).
#[tokio::test(start_paused = true)]
async fn the_default_lock_and_memory_store_time_out_with_lock_timeout() {
    store_lock_timeout_conformance(Arc::new(MemoryStore::new()), Duration::from_secs(30)).await;
    store_lock_timeout_conformance(
        Arc::new(ObservedStore::new(MemoryStore::new(), |_| {})),
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test]
async fn observed_store_conforms() {
    store_conformance(Arc::new(ObservedStore::new(MemoryStore::new(), |_| {}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms_and_its_lock_excludes() {
    let dir = TempDir::new("conformance");
    let store = Arc::new(FileStore::new(dir.0.join("nested/dir/tokens.json")));
    store_conformance(store.clone()).await;
    store_lock_conformance(store.clone()).await;
    let bounded = FileStore::new(store.path()).lock_timeout(Duration::from_millis(300));
    store_lock_timeout_conformance(Arc::new(bounded), Duration::from_millis(300)).await;
    // Two stores on the same file (as two processes would have) exclude each other too.
    let other = Arc::new(FileStore::new(store.path()));
    let held = store.lock("k").await.unwrap();
    let waiting = tokio::spawn(async move { other.lock("k").await.map(drop) });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    drop(held);
    waiting.await.unwrap().unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_is_private_and_json() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let path = dir.0.join("sub/tokens.json");
    let store = FileStore::new(&path);
    let token = Token::new(AccessToken::new("at-1"))
        .with_refresh_token(Some(authed::RefreshToken::new("rt-1")));
    store.save("login", &token).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.0.join("sub/tokens.json.lock")), 0o600);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["tokens"]["login"]["refresh_token"], "rt-1");
    // No temporary file is left behind by a completed save.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[tokio::test]
async fn a_corrupt_file_is_a_store_error_and_is_not_overwritten() {
    let dir = TempDir::new("corrupt");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("tokens.json");
    std::fs::write(
        &path,
        b"{\"version\":1,\"tokens\":{\"a\":{\"access_token\":\"secret-at\"",
    )
    .unwrap();
    let store = FileStore::new(&path);
    let e = store.load("a").await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    let shown = format!("{e} {:?}", std::error::Error::source(&e));
    assert!(!shown.contains("secret-at"), "{shown}");
    let e = store
        .save("b", &Token::new(AccessToken::new("x")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("secret-at"),
        "corrupt file was clobbered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_ends_the_wait_with_a_typed_error_at_the_bound() {
    let dir = TempDir::new("lock-timeout");
    let path = dir.0.join("tokens.json");
    let holder = FileStore::new(&path);
    let held = holder.lock("k").await.unwrap();
    let waiter = FileStore::new(&path).lock_timeout(std::time::Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let e = waiter.lock("k").await.unwrap_err();
    assert!(matches!(e, Error::LockTimeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    let waited = started.elapsed();
    assert!(
        (std::time::Duration::from_secs(3)..std::time::Duration::from_secs(4)).contains(&waited),
        "{waited:?}"
    );
    drop(held);
    drop(waiter.lock("k").await.unwrap());
}

/// Dropping a waiting `lock()` future ends the wait: no thread stays blocked in the OS lock
/// call. With one blocking thread, a blocked one would starve every later file operation.
#[test]
fn dropping_a_waiting_lock_leaves_no_thread_blocked() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = TempDir::new("lock-cancel");
        let path = dir.0.join("tokens.json");
        let held = FileStore::new(&path).lock("k").await.unwrap();
        let waiter = FileStore::new(&path);
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(100), waiter.lock("k")).await;
        assert!(gave_up.is_err(), "the lock was granted while held");
        // The one blocking thread is free: a save completes while the lock is still held.
        let token = Token::new(AccessToken::new("a"));
        let save = waiter.save("k", &token);
        tokio::time::timeout(std::time::Duration::from_secs(60), save)
            .await
            .expect("the blocking pool is stuck in a cancelled lock wait")
            .unwrap();
        drop(held);
    });
}

#[tokio::test]
async fn a_save_removes_stale_temp_files_and_only_ours() {
    let dir = TempDir::new("stale-temp");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("tokens.json");
    let stale = [
        dir.0.join("tokens.json.tmp-4242-0"),
        dir.0.join("tokens.json.tmp-1-17"),
    ];
    let kept = [
        dir.0.join("tokens.json.tmp-notours"),
        dir.0.join("tokens.json.tmp-12-"),
        dir.0.join("other.json.tmp-1-2"),
        dir.0.join("tokens.json.bak"),
    ];
    for p in stale.iter().chain(&kept) {
        std::fs::write(p, r#"{"refresh_token":"left-behind"}"#).unwrap();
    }
    let store = FileStore::new(&path);
    store
        .save("k", &Token::new(AccessToken::new("a")))
        .await
        .unwrap();
    for p in &stale {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    for p in &kept {
        assert!(p.exists(), "{} is not ours but was removed", p.display());
    }
}

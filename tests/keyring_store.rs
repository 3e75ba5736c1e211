//! KeyringStore against real OS credential stores on Linux (no mock): the kernel keyring
//! (keyutils) and the Secret Service (gnome-keyring-daemon in a D-Bus session). scripts/stores
//! starts them and names them in `AUTHED_KEYRING_BACKENDS` (`kernel`, `secret-service`).
//! A backend not named there is skipped, except under CI (`CI=true`), where it fails.
#![cfg(all(feature = "keyring", target_os = "linux"))]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use authed::testing::{
    TestProvider, store_conformance, store_lock_conformance, store_lock_timeout_conformance,
};
use authed::{AccessToken, KeyringStore, RefreshToken, Token, TokenSource, TokenStore};

fn backend_available(name: &str) -> bool {
    let listed = std::env::var("AUTHED_KEYRING_BACKENDS")
        .unwrap_or_default()
        .split([' ', ','])
        .any(|b| b == name);
    if !listed {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but the {name} keyring backend is not running: run the keyring tests through scripts/stores"
            );
        }
        eprintln!(
            "skipped: the {name} keyring backend is not named in AUTHED_KEYRING_BACKENDS (scripts/stores starts it)"
        );
    }
    listed
}

fn service(name: &str) -> String {
    format!(
        "authed-test-{name}-{}-{}",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    )
}

fn token(n: u32) -> Token {
    Token::new(AccessToken::new(format!("at-{n}")))
        .with_refresh_token(Some(RefreshToken::new(format!("rt-{n}"))))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the backend's own tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What the backend's own command-line tool finds for (service, key): proves the token is in
/// the real OS store, not in a mock or in memory.
fn stored_by_os(backend: &str, service: &str, key: &str) -> Option<String> {
    let out = match backend {
        "kernel" => Command::new("keyctl")
            .args([
                "search",
                "@s",
                "user",
                &format!("keyring-rs:{key}@{service}"),
            ])
            .output()
            .unwrap(),
        _ => Command::new("secret-tool")
            .args(["lookup", "service", service, "username", key])
            .output()
            .unwrap(),
    };
    if !out.status.success() {
        return None;
    }
    let found = String::from_utf8(out.stdout).unwrap();
    Some(match backend {
        "kernel" => run(Command::new("keyctl").args(["pipe", found.trim()])),
        _ => found,
    })
}

async fn conformance_and_round_trip(backend: &str, store: KeyringStore) {
    let service = store.service().to_owned();
    let bounded = store.clone().lock_wait(Duration::from_millis(300));
    let store = Arc::new(store);
    store_conformance(store.clone()).await;
    store_lock_conformance(store.clone()).await;
    store_lock_timeout_conformance(Arc::new(bounded), Duration::from_millis(300)).await;

    store.save("login", &token(1)).await.unwrap();
    let seen = stored_by_os(backend, &service, "login").expect("the OS store holds the token");
    let parsed: Token = serde_json::from_str(&seen).expect("the token's JSON");
    assert!(parsed == token(1));
    store.delete("login").await.unwrap();
    assert_eq!(stored_by_os(backend, &service, "login"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_keyring_passes_the_store_conformance_suite() {
    if !backend_available("kernel") {
        return;
    }
    conformance_and_round_trip("kernel", KeyringStore::kernel_keyring(service("kernel"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_service_passes_the_store_conformance_suite() {
    if !backend_available("secret-service") {
        return;
    }
    conformance_and_round_trip("secret-service", KeyringStore::new(service("ss"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_kept_in_the_keyring_across_restarts() {
    let (backend, store) = if backend_available("secret-service") {
        ("secret-service", KeyringStore::new(service("restart")))
    } else if backend_available("kernel") {
        ("kernel", KeyringStore::kernel_keyring(service("restart")))
    } else {
        return;
    };
    let name = store.service().to_owned();
    let provider = TestProvider::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(store);
    let first = Token::new(AccessToken::new("initial"))
        .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token())));
    store.save("me", &first).await.unwrap();
    let login = provider
        .config(None)
        .refresh_token_source()
        .store(store.clone())
        .key("me")
        .from_store()
        .await
        .unwrap()
        .expect("the login is in the keyring");
    let current = login.token().await.unwrap();
    let refreshed = login.token_rejected(&current).await.unwrap();
    drop(login);

    // A new process: reads the rotated refresh token from the OS store, and it is live.
    let saved = stored_by_os(backend, &name, "me").expect("saved in the OS store");
    let saved: Token = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved.access_token(), refreshed.access_token());
    let rt = saved.refresh_token().unwrap().secret().to_owned();
    assert!(provider.refresh_token_is_live(&rt));
    assert_eq!(provider.invalid_grants(), 0);
    store.delete("me").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_lock_file_the_lock_excludes_across_processes_and_waits_a_bounded_time() {
    if !backend_available("kernel") {
        return;
    }
    let dir = std::env::temp_dir().join(service("lockfile"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens.lock");
    // Different service names: only the file lock is shared, as between two processes
    // (flock locks of separate opens exclude each other even within one process).
    let a = KeyringStore::kernel_keyring(service("a")).lock_file(&path);
    let b = KeyringStore::kernel_keyring(service("b"))
        .lock_file(&path)
        .lock_wait(Duration::from_millis(300));
    let held = a.lock("k").await.unwrap();
    let e = b.lock("k").await.expect_err("the file lock is held");
    assert!(matches!(e, authed::Error::LockTimeout { .. }), "{e:?}");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(10), b.lock("k"))
        .await
        .expect("granted after release")
        .unwrap();
    drop(again);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_lock_is_bounded_too() {
    if !backend_available("kernel") {
        return;
    }
    let name = service("bounded");
    let a = KeyringStore::kernel_keyring(&name);
    let b = KeyringStore::kernel_keyring(&name).lock_wait(Duration::from_millis(200));
    let held = a.lock("k").await.unwrap();
    let e = b
        .lock("k")
        .await
        .expect_err("same service and key: excluded");
    assert!(matches!(e, authed::Error::LockTimeout { .. }), "{e:?}");
    drop(held);
    drop(b.lock("k").await.unwrap());
}

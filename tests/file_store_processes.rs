//! OS processes sharing one FileStore: two refreshing at once, SIGKILL while saving (and the
//! leftovers cleaned up), SIGSTOP while holding the lock, and a revoked refresh racing a new
//! sign-in. The child processes are this test binary again, running the ignored
//! `child_process` test in the mode named by `AUTHED_CHILD_MODE`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use authed::testing::TestProvider;
use authed::{
    AccessToken, Error, FileStore, OAuthConfig, RefreshToken, Token, TokenSource, TokenStore,
};

const KEY: &str = "shared-login";
const ROUNDS: usize = 25;
const PAD: usize = 256 * 1024;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "authed-{name}-{}-{}",
            std::process::id(),
            oauth2::CsrfToken::new_random().secret()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn child(mode: &str, token_url: &str, store: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("AUTHED_CHILD_MODE", mode)
    .env("AUTHED_TOKEN_URL", token_url)
    .env("AUTHED_STORE", store)
    .stdin(Stdio::null())
    .kill_on_drop(true);
    cmd
}

fn config() -> OAuthConfig {
    OAuthConfig::builder(std::env::var("AUTHED_TOKEN_URL").unwrap())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap()
}

/// The `RESULT ...` line a child printed.
fn result(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = stdout.find("RESULT ").expect("the child printed no result");
    stdout[at + 7..].lines().next().unwrap().to_owned()
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// The child side. Does nothing unless started by one of the tests below.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_process() {
    let Ok(mode) = std::env::var("AUTHED_CHILD_MODE") else {
        return;
    };
    let store_path = PathBuf::from(std::env::var("AUTHED_STORE").unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&store_path));
        match mode.as_str() {
            "refresh" => {
                let config = OAuthConfig::builder(std::env::var("AUTHED_TOKEN_URL").unwrap())
                    .client_id(TestProvider::CLIENT_ID)
                    .client_secret(TestProvider::CLIENT_SECRET)
                    .build()
                    .unwrap();
                let login = config
                    .refresh_token_source()
                    .store(store)
                    .key(KEY)
                    .from_store()
                    .await
                    .unwrap()
                    .unwrap();
                for round in 0..ROUNDS {
                    let current = login
                        .token()
                        .await
                        .unwrap_or_else(|e| panic!("round {round}: {e}"));
                    // As if the API refused the token: forces a refresh, racing the other process.
                    let next = login
                        .token_rejected(&current)
                        .await
                        .unwrap_or_else(|e| panic!("round {round}: {e}"));
                    assert_ne!(next.access_token(), current.access_token());
                }
            }
            "save-loop" => {
                let start = match store.load(KEY).await.unwrap() {
                    Some(t) => generation(&t).unwrap() + 1,
                    None => 0,
                };
                println!("READY");
                for n in start.. {
                    store.save(KEY, &padded(n)).await.unwrap();
                }
            }
            "hold-lock" => {
                let lock = store.lock(KEY).await.unwrap();
                println!("LOCKED");
                // Held until the parent writes a line (or closes stdin).
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                drop(lock);
            }
            "try-lock" => {
                let ms: u64 = std::env::var("AUTHED_LOCK_MS").unwrap().parse().unwrap();
                let store = FileStore::new(&store_path).lock_timeout(Duration::from_millis(ms));
                match store.lock(KEY).await {
                    Ok(lock) => {
                        println!("RESULT LOCKED");
                        drop(lock);
                    }
                    Err(Error::LockTimeout { waited }) => {
                        println!("RESULT TIMEOUT {}", waited.as_millis());
                    }
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
            }
            "revoked-refresh" => {
                let login = config()
                    .refresh_token_source()
                    .store(store)
                    .key(KEY)
                    .from_store()
                    .await
                    .unwrap()
                    .unwrap();
                let e = login.token().await.unwrap_err();
                assert!(e.is_revoked(), "{e:?}");
                println!("RESULT REVOKED");
            }
            "sign-in" => {
                let rt = std::env::var("AUTHED_RT").unwrap();
                let token = Token::new(AccessToken::new("new-sign-in"))
                    .with_refresh_token(Some(RefreshToken::new(rt)));
                config()
                    .refresh_token_source()
                    .store(store)
                    .key(KEY)
                    .from_token(token)
                    .await
                    .unwrap();
                println!("RESULT SAVED");
            }
            other => panic!("unknown child mode {other}"),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_one_file_store_never_reuse_a_refresh_token() {
    let provider = TestProvider::start().await;
    // A little latency widens the window in which both processes want to refresh.
    provider.set_latency(Duration::from_millis(5));
    let dir = TempDir::new("two-processes");
    let path = dir.0.join("tokens.json");
    let store = FileStore::new(&path);
    let initial = Token::new(AccessToken::new("initial"))
        .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token())));
    store.save(KEY, &initial).await.unwrap();

    // The parent keeps reading the file while the children replace it.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads, path) = (done.clone(), reads.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            while !done.load(Ordering::SeqCst) {
                let bytes = std::fs::read(&path).expect("the token file must always exist");
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).expect("the token file must always parse");
                assert!(v["tokens"][KEY]["refresh_token"].is_string());
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let a = child("refresh", &provider.token_url(), &path).output();
    let b = child("refresh", &provider.token_url(), &path).output();
    let (a, b) = tokio::join!(a, b);
    done.store(true, Ordering::SeqCst);
    reader.await.unwrap();
    for out in [a.unwrap(), b.unwrap()] {
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    assert_eq!(provider.invalid_grants(), 0);
    let presented = provider.presented_refresh_tokens();
    let distinct: HashSet<_> = presented.iter().collect();
    assert_eq!(
        distinct.len(),
        presented.len(),
        "a refresh token was presented twice"
    );
    // Each child saw ROUNDS distinct new tokens; some were adopted from the other process.
    assert!(
        (ROUNDS..=2 * ROUNDS).contains(&presented.len()),
        "{} refreshes",
        presented.len()
    );
    let last = store.load(KEY).await.unwrap().unwrap();
    assert!(provider.refresh_token_is_live(last.refresh_token().unwrap().secret()));
    eprintln!(
        "two processes: {} refreshes for {} forced rounds, {} concurrent reads of the file",
        presented.len(),
        2 * ROUNDS,
        reads.load(Ordering::SeqCst)
    );
}

fn padded(n: u64) -> Token {
    let mut extra = serde_json::Map::new();
    extra.insert("pad".to_owned(), format!("{}{n}", "x".repeat(PAD)).into());
    Token::new(AccessToken::new(format!("gen-{n}")))
        .with_refresh_token(Some(RefreshToken::new(format!("rt-{n}"))))
        .with_extra(extra)
}

/// The generation of a token written by the save loop, checking it is whole.
fn generation(t: &Token) -> Option<u64> {
    let n: u64 = t
        .access_token()
        .secret()
        .strip_prefix("gen-")?
        .parse()
        .ok()?;
    let whole = t.refresh_token()?.secret() == format!("rt-{n}")
        && t.extra()["pad"].as_str()? == format!("{}{n}", "x".repeat(PAD));
    whole.then_some(n)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_saving_leaves_the_old_or_the_new_file() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncBufReadExt;

    let dir = TempDir::new("sigkill");
    let path = dir.0.join("tokens.json");
    let store = FileStore::new(&path);
    // The "old content" of the first kill.
    store.save(KEY, &padded(0)).await.unwrap();
    let mut last = None;
    let mut mid_write = 0;
    for i in 0..30u64 {
        let mut child = child("save-loop", "", &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the child is saving, then kill it at a varying point.
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints "test child_process ... " without a newline first.
            if line.ends_with("READY") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5 + (i * 13) % 80)).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();

        let token = store.load(KEY).await.unwrap().expect("a token is stored");
        let n = generation(&token).expect("the stored token is whole");
        assert!(
            last.is_none_or(|l| n >= l),
            "went back from generation {last:?} to {n}"
        );
        last = Some(n);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".tmp-"))
            .collect();
        if !leftovers.is_empty() {
            mid_write += 1;
            for p in &leftovers {
                assert_eq!(
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
            // The next save (here: of another key) removes what the killed save left.
            store.save("probe", &padded(0)).await.unwrap();
            for p in &leftovers {
                assert!(!p.exists(), "{} survived the next save", p.display());
            }
        }
    }
    eprintln!("sigkill: 30 kills, {mid_write} landed mid-write, last generation {last:?}");
    assert!(last.unwrap() > 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_lock_holder_makes_others_time_out_and_they_proceed_after_sigcont() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    let dir = TempDir::new("sigstop");
    let path = dir.0.join("tokens.json");
    let mut holder = child("hold-lock", "", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.ends_with("LOCKED") {
            break;
        }
    }
    let pid = holder.id().unwrap();
    signal(pid, "-STOP");

    let try_lock = |ms: &str| {
        let mut cmd = child("try-lock", "", &path);
        cmd.env("AUTHED_LOCK_MS", ms);
        cmd.output()
    };
    let (a, b, c) = tokio::join!(try_lock("500"), try_lock("500"), try_lock("500"));
    let mut waits = Vec::new();
    for out in [a.unwrap(), b.unwrap(), c.unwrap()] {
        let r = result(&out);
        let ms: u64 = r
            .strip_prefix("TIMEOUT ")
            .unwrap_or_else(|| panic!("expected a lock timeout, got {r}"))
            .parse()
            .unwrap();
        assert!(ms >= 500, "gave up after {ms} ms, before the bound");
        waits.push(ms);
    }

    signal(pid, "-CONT");
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"release\n").await.unwrap();
    drop(stdin);
    assert!(holder.wait().await.unwrap().success());
    let (a, b, c) = tokio::join!(try_lock("60000"), try_lock("60000"), try_lock("60000"));
    for out in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!(result(&out), "LOCKED");
    }
    eprintln!("sigstop: three processes timed out after {waits:?} ms (bound 500 ms), then locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_in_one_process_keeps_a_new_sign_in_of_another() {
    let provider = TestProvider::start().await;
    // The rejection takes a while: the new sign-in happens while it is on its way.
    provider.set_latency(Duration::from_secs(2));
    let dir = TempDir::new("revoked-vs-sign-in");
    let path = dir.0.join("tokens.json");
    let store = FileStore::new(&path);
    let dead = Token::new(AccessToken::new("old"))
        .with_refresh_token(Some(RefreshToken::new("never-issued")))
        .with_expires_at(Some(std::time::SystemTime::now() - Duration::from_secs(60)));
    store.save(KEY, &dead).await.unwrap();

    let refresh = tokio::spawn(child("revoked-refresh", &provider.token_url(), &path).output());
    for _ in 0..60_000 {
        if provider.token_requests() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        provider.token_requests(),
        1,
        "the refresh never reached the provider"
    );
    let fresh = provider.issue_refresh_token();
    let sign_in = child("sign-in", &provider.token_url(), &path)
        .env("AUTHED_RT", &fresh)
        .output()
        .await
        .unwrap();
    assert_eq!(result(&sign_in), "SAVED");
    assert_eq!(result(&refresh.await.unwrap().unwrap()), "REVOKED");
    assert_eq!(provider.invalid_grants(), 1);

    let kept = store
        .load(KEY)
        .await
        .unwrap()
        .expect("the new sign-in was deleted");
    assert_eq!(kept.refresh_token().unwrap().secret(), fresh);
}

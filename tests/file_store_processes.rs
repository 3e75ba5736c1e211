//! Two OS processes sharing one FileStore, and SIGKILL while saving. The child processes are
//! this test binary again, running the ignored `child_process` test in the mode named by
//! `AUTHED_CHILD_MODE`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use authed::testing::TestProvider;
use authed::{AccessToken, FileStore, OAuthConfig, RefreshToken, Token, TokenSource, TokenStore};

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
            for p in leftovers {
                assert_eq!(
                    std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    eprintln!("sigkill: 30 kills, {mid_write} landed mid-write, last generation {last:?}");
    assert!(last.unwrap() > 0);
}

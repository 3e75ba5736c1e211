use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::{StoreLock, TokenStore};
use crate::token::{RefreshToken, Token};

/// Keeps tokens in one JSON file, so that a login survives restarts and is shared by every
/// process of the same user (a CLI run twice at once, a CLI and its daemon).
///
/// - Every change replaces the file atomically: the new content is written to a temporary
///   file in the same directory, flushed to disk (`fsync`), and renamed over the old one.
///   A crash or `SIGKILL` at any point leaves the old or the new file, never a mix.
/// - On Unix the file is created with mode `0600` (and missing directories with `0700`):
///   it holds refresh tokens.
/// - [`lock`](TokenStore::lock) takes an exclusive OS file lock on `<file>.refresh-lock`, so
///   two processes never refresh a login at the same time: the second one, after the lock,
///   re-reads the file and uses the token the first saved. Saves and deletes hold
///   `<file>.lock` for their read-modify-write, so logins under different keys are never lost.
///   The locks are advisory (`flock` on Unix, `LockFileEx` on Windows) and released when
///   the process exits, however it exits.
/// - Lock waits are bounded: a process that holds a lock and hangs (or was stopped with
///   `SIGSTOP`) makes the others fail with [`Error::LockTimeout`] after
///   [`lock_timeout`](Self::lock_timeout) (default 30 s), not wait forever. Dropping the
///   future of a waiting [`lock`](TokenStore::lock) stops the wait at once.
/// - A save removes the temporary files a crashed save of this store left behind (`<file>.tmp-*`):
///   they can hold refresh tokens. Only files of that name, and only while holding the write
///   lock that every writer holds while its temporary file exists, so no live writer's file
///   is touched.
///
/// File I/O runs on Tokio's blocking thread pool.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{FileStore, OAuthConfig};
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("my-cli")
///     .build()?;
/// let store = FileStore::new("/home/me/.config/my-cli/tokens.json");
/// let login = config.refresh_token_source().store(store).from_store().await?;
/// # let _ = login;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    file: PathBuf,
    write_lock: PathBuf,
    refresh_lock: PathBuf,
    lock_timeout: Duration,
}

/// Long enough for a holder's refresh with retries (see [`RetryPolicy`](crate::RetryPolicy));
/// short enough that a hung holder is noticed.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The file's format. Versioned so that a later layout can still read this one.
#[derive(Serialize, Deserialize, Default)]
struct Contents {
    version: u32,
    tokens: BTreeMap<String, Token>,
}

const VERSION: u32 = 1;

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    file.with_file_name(name)
}

/// An I/O error with what was being done, never the file's content.
fn io_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::store(io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

impl FileStore {
    /// A store in the file at `path`, created on the first save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let file = path.into();
        FileStore {
            inner: Arc::new(Paths {
                write_lock: sibling(&file, ".lock"),
                refresh_lock: sibling(&file, ".refresh-lock"),
                file,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
            }),
        }
    }

    /// How long [`lock`](TokenStore::lock), and a save waiting for another process's save,
    /// wait for a lock before failing with [`Error::LockTimeout`]. Default 30 seconds.
    #[must_use]
    pub fn lock_timeout(self, timeout: Duration) -> Self {
        let p = &self.inner;
        FileStore {
            inner: Arc::new(Paths {
                file: p.file.clone(),
                write_lock: p.write_lock.clone(),
                refresh_lock: p.refresh_lock.clone(),
                lock_timeout: timeout,
            }),
        }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.inner.file
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Paths) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let paths = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&paths))
            .await
            .map_err(|e| Error::store(io::Error::other(format!("file store task failed: {e}"))))?
    }
}

impl Paths {
    fn read(&self) -> Result<Contents, Error> {
        let bytes = match fs::read(&self.file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(io_error("reading", &self.file, e)),
        };
        // serde_json's message quotes what it found ("invalid type: string \"rt-...\""),
        // which may be a token: keep only where and what kind of error.
        let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| {
            io_error(
                "parsing",
                &self.file,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "not a token file ({:?} error at line {} column {})",
                        e.classify(),
                        e.line(),
                        e.column()
                    ),
                ),
            )
        })?;
        if contents.version > VERSION {
            return Err(io_error(
                "reading",
                &self.file,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "format version {} is newer than this program",
                        contents.version
                    ),
                ),
            ));
        }
        Ok(contents)
    }

    /// Read-modify-write under the write lock.
    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, Token>)) -> Result<(), Error> {
        let _lock = lock_file_blocking(&self.write_lock, self.lock_timeout)?;
        self.remove_stale_temp_files();
        let mut contents = self.read()?;
        contents.version = VERSION;
        f(&mut contents.tokens);
        let json =
            serde_json::to_vec_pretty(&contents).map_err(|e| Error::store(io::Error::other(e)))?;
        write_atomically(&self.file, &json).map_err(|e| io_error("writing", &self.file, e))
    }
}

impl Paths {
    /// Removes `<file>.tmp-<pid>-<n>` files. Call only with the write lock held: every writer
    /// holds it while its temporary file exists, so those left are a crashed writer's.
    fn remove_stale_temp_files(&self) {
        let (Some(dir), Some(name)) = (self.file.parent(), self.file.file_name()) else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let prefix = format!("{}.tmp-", name.to_string_lossy());
        for entry in entries.flatten() {
            let entry_name = entry.file_name();
            let Some(rest) = entry_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let ours = rest.split_once('-').is_some_and(|(pid, n)| {
                [pid, n]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            });
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => tracing::debug!("removed a temporary file a crashed save left"),
                    Err(e) => {
                        tracing::debug!(error = %e, "could not remove a stale temporary file")
                    }
                }
            }
        }
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens (creating, mode 0600) the lock file at `path`.
fn open_lock_file(path: &Path) -> Result<File, Error> {
    let open = || {
        create_parent(path)?;
        private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    open().map_err(|e| io_error("opening lock file", path, e))
}

/// Takes the exclusive lock without waiting: `Ok(false)` when someone else holds it.
fn try_lock(file: &File, path: &Path) -> Result<bool, Error> {
    match fs4::FileExt::try_lock(file) {
        Ok(()) => Ok(true),
        Err(fs4::TryLockError::WouldBlock) => Ok(false),
        Err(fs4::TryLockError::Error(e)) => Err(io_error("locking", path, e)),
    }
}

/// Pause between two tries: short at first (the common holder is a save of a few
/// milliseconds), then at most 50 ms.
fn lock_retry_delay(tries: u32) -> Duration {
    Duration::from_millis(1 << tries.min(5)).min(Duration::from_millis(50))
}

/// Locks `path` exclusively, waiting at most `bound`, on a blocking thread. The lock is
/// released when the returned file is closed, or when the process dies.
fn lock_file_blocking(path: &Path, bound: Duration) -> Result<File, Error> {
    let file = open_lock_file(path)?;
    let started = std::time::Instant::now();
    let mut tries = 0;
    while !try_lock(&file, path)? {
        if started.elapsed() >= bound {
            return Err(Error::LockTimeout {
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(lock_retry_delay(tries));
        tries += 1;
    }
    Ok(file)
}

/// Temp file in the same directory (so `rename` is atomic), `fsync`, `rename`, then `fsync`
/// of the directory so the rename itself survives a power loss.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    create_parent(path)?;
    let tmp = sibling(
        path,
        &format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
    );
    let result = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        let key = key.to_owned();
        // No lock: the file is only ever replaced whole, so a read sees one version.
        Box::pin(self.blocking(move |p| Ok(p.read()?.tokens.remove(&key))))
    }

    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        let (key, token) = (key.to_owned(), token.clone());
        Box::pin(self.blocking(move |p| {
            p.update(|tokens| {
                tokens.insert(key, token);
            })
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let key = key.to_owned();
        Box::pin(self.blocking(move |p| {
            if !p.read()?.tokens.contains_key(&key) {
                return Ok(());
            }
            p.update(|tokens| {
                tokens.remove(&key);
            })
        }))
    }

    /// Compares and deletes in one read-modify-write under the write lock, so that even a
    /// save that does not hold the refresh lock is never lost.
    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let (key, rejected) = (key.to_owned(), rejected.clone());
        Box::pin(self.blocking(move |p| {
            let holds = |c: &Contents| {
                c.tokens
                    .get(&key)
                    .is_some_and(|t| t.refresh_token() == Some(&rejected))
            };
            // Most calls find a newer login or none: no write, and no write lock, then.
            if !holds(&p.read()?) {
                return Ok(false);
            }
            let mut deleted = false;
            p.update(|tokens| {
                if tokens
                    .get(&key)
                    .is_some_and(|t| t.refresh_token() == Some(&rejected))
                {
                    tokens.remove(&key);
                    deleted = true;
                }
            })?;
            Ok(deleted)
        }))
    }

    fn lock<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        // One lock for all keys: refreshes are rare, and per-key lock files would need a
        // file name derived from the key that every program version agrees on.
        Box::pin(async move {
            let path = &self.inner.refresh_lock;
            let bound = self.inner.lock_timeout;
            let file = self.blocking(|p| open_lock_file(&p.refresh_lock)).await?;
            // Tries without blocking (one system call each), sleeping on Tokio's timer in
            // between: dropping this future ends the wait, which a blocking `flock` in a
            // thread could not do.
            let started = tokio::time::Instant::now();
            let mut tries = 0;
            while !try_lock(&file, path)? {
                if started.elapsed() >= bound {
                    tracing::warn!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        "gave up waiting for the token store's lock"
                    );
                    return Err(Error::LockTimeout {
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(lock_retry_delay(tries)).await;
                tries += 1;
            }
            Ok(StoreLock::new(file))
        })
    }
}

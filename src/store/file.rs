use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::source::BoxFuture;
use crate::store::{StoreLock, TokenStore};
use crate::token::Token;

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
///
/// File I/O runs on Tokio's blocking thread pool.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use std::sync::Arc;
/// use authed::{FileStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(FileStore::new("/home/me/.config/my-cli/tokens.json"));
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
}

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
        let _lock = lock_file(&self.write_lock)?;
        let mut contents = self.read()?;
        contents.version = VERSION;
        f(&mut contents.tokens);
        let json =
            serde_json::to_vec_pretty(&contents).map_err(|e| Error::store(io::Error::other(e)))?;
        write_atomically(&self.file, &json).map_err(|e| io_error("writing", &self.file, e))
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

/// Opens (creating, mode 0600) and exclusively locks `path`; the lock is released when the
/// returned file is closed, or when the process dies.
fn lock_file(path: &Path) -> Result<File, Error> {
    let open = || {
        create_parent(path)?;
        private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    let file = open().map_err(|e| io_error("opening lock file", path, e))?;
    fs4::FileExt::lock(&file).map_err(|e| io_error("locking", path, e))?;
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

    fn lock<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        // One lock for all keys: refreshes are rare, and per-key lock files would need a
        // file name derived from the key that every program version agrees on.
        Box::pin(self.blocking(|p| lock_file(&p.refresh_lock).map(StoreLock::new)))
    }
}

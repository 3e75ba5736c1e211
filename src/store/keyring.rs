use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ::keyring::Entry;

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::{StoreLock, TokenStore};
use crate::token::Token;

/// Keeps tokens in the operating system's credential store, encrypted at rest and unlocked
/// with the user's login: what a desktop tool or CLI should use instead of a plain file.
///
/// Each key is one credential, with `service` as its service name and the key as its user
/// (account) name; the value is the token's JSON. Backends, through the
/// [`keyring`](https://docs.rs/keyring/3) crate:
///
/// | OS | Backend | Notes |
/// |---|---|---|
/// | macOS, iOS | Keychain | the login keychain |
/// | Windows | Credential Manager | a credential holds at most 2560 bytes: a token with large JWTs may not fit ([`Error::Store`]) |
/// | Linux, *BSD | Secret Service (GNOME Keyring, KWallet) over D-Bus | needs a running, unlocked Secret Service in the user's session |
/// | Linux | kernel keyring (keyutils), with [`KeyringStore::kernel_keyring`] | in memory only: logins last until reboot or logout; no daemon needed (headless machines, containers) |
///
/// # Locking
///
/// No OS keyring offers a lock across processes. By default [`lock`](TokenStore::lock)
/// excludes within this process only (every `KeyringStore` with the same service and key
/// shares it): enough for one program that runs once at a time. If two processes of your
/// program can refresh the same login at once (a CLI run twice, a CLI and its daemon) and the
/// provider rotates refresh tokens, set [`lock_file`](KeyringStore::lock_file): the lock then
/// also takes an exclusive OS file lock on that file, as `FileStore` does,
/// so the second process re-reads the keyring and uses the token the first one saved.
/// Either lock waits at most [`lock_wait`](KeyringStore::lock_wait) (30 s by default), then
/// fails with [`Error::LockTimeout`]; dropping the waiting future stops the wait.
///
/// Keyring calls block, so they run on Tokio's blocking thread pool.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use std::sync::Arc;
/// use authed::{KeyringStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(KeyringStore::new("my-cli"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
    backend: Backend,
    lock_file: Option<PathBuf>,
    lock_wait: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Default,
    #[cfg(target_os = "linux")]
    KernelKeyring,
}

impl KeyringStore {
    /// A store in the platform's default credential store, under the service name `service`
    /// (name it after your application).
    pub fn new(service: impl Into<String>) -> Self {
        KeyringStore {
            service: service.into(),
            backend: Backend::Default,
            lock_file: None,
            lock_wait: Duration::from_secs(30),
        }
    }

    /// A store in the Linux kernel keyring (keyutils): the user's session keyring, linked to
    /// their persistent keyring where the kernel has one. Needs no daemon, but keeps
    /// nothing across a reboot.
    ///
    /// The process needs a session keyring that it possesses: a login session has one
    /// (`pam_keyinit`); a service or container without one can start under
    /// `keyctl session - <command>`. Without it the kernel denies reading the keys back, and
    /// every call fails with [`Error::Store`].
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    pub fn kernel_keyring(service: impl Into<String>) -> Self {
        KeyringStore {
            backend: Backend::KernelKeyring,
            ..KeyringStore::new(service)
        }
    }

    /// Also lock across processes, with an exclusive OS file lock on `path` (created with
    /// mode 0600 if missing; it holds no secret). Use a path in the user's own directories.
    pub fn lock_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.lock_file = Some(path.into());
        self
    }

    /// How long [`lock`](TokenStore::lock) waits for another holder before it fails with
    /// [`Error::LockTimeout`]. Default 30 s.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The service name credentials are saved under.
    pub fn service(&self) -> &str {
        &self.service
    }

    fn entry(&self, key: &str) -> Result<Entry, ::keyring::Error> {
        match self.backend {
            Backend::Default => Entry::new(&self.service, key),
            #[cfg(target_os = "linux")]
            Backend::KernelKeyring => {
                ::keyring::keyutils::KeyutilsCredential::new_with_target(None, &self.service, key)
                    .map(|c| Entry::new_with_credential(Box::new(c)))
            }
        }
    }

    /// Runs `f` on the key's entry on the blocking thread pool.
    async fn blocking<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(Entry) -> Result<T, ::keyring::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let entry = self.entry(key).map_err(keyring_error)?;
        tokio::task::spawn_blocking(move || f(entry))
            .await
            .map_err(|e| Error::store(io::Error::other(format!("keyring task failed: {e}"))))?
            .map_err(keyring_error)
    }
}

/// The keyring crate's messages name the backend's failure, never the secret.
fn keyring_error(e: ::keyring::Error) -> Error {
    Error::store(io::Error::other(format!("keyring: {e}")))
}

type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// The in-process locks, one per (service, key), shared by every `KeyringStore`.
fn process_lock(service: &str, key: &str) -> KeyLock {
    static LOCKS: OnceLock<Mutex<HashMap<(String, String), KeyLock>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Forget locks nobody holds or waits for, so the map does not grow with every key ever used.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks
        .entry((service.to_owned(), key.to_owned()))
        .or_default()
        .clone()
}

/// Polls a non-blocking exclusive lock on `path`, so that the wait stays cancellable.
async fn lock_file(path: PathBuf) -> Result<File, Error> {
    let io_error = |what: &str, e: io::Error| {
        Error::store(io::Error::new(
            e.kind(),
            format!("{what} {}: {e}", path.display()),
        ))
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| io_error("opening lock file", e))?;
    let mut pause = Duration::from_millis(5);
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => return Err(io_error("locking", e)),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

impl TokenStore for KeyringStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        Box::pin(async move {
            let json = self
                .blocking(key, |entry| match entry.get_password() {
                    Ok(json) => Ok(Some(json)),
                    Err(::keyring::Error::NoEntry) => Ok(None),
                    Err(e) => Err(e),
                })
                .await?;
            json.map(|j| {
                // serde_json's message names a line and column, never the content.
                serde_json::from_str(&j).map_err(|e| {
                    Error::store(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unreadable token in the keyring: {e}"),
                    ))
                })
            })
            .transpose()
        })
    }

    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let json =
                serde_json::to_string(token).map_err(|e| Error::store(io::Error::other(e)))?;
            self.blocking(key, move |entry| entry.set_password(&json))
                .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.blocking(key, |entry| match entry.delete_credential() {
            Ok(()) | Err(::keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        }))
    }

    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        Box::pin(async move {
            let wait = async {
                let in_process = process_lock(&self.service, key).lock_owned().await;
                let file = match &self.lock_file {
                    Some(path) => Some(lock_file(path.clone()).await?),
                    None => None,
                };
                Ok::<_, Error>(StoreLock::new((in_process, file)))
            };
            // The TokenStore contract: a wait that runs out is a lock timeout.
            tokio::time::timeout(self.lock_wait, wait)
                .await
                .unwrap_or(Err(Error::LockTimeout {
                    waited: self.lock_wait,
                }))
        })
    }
}

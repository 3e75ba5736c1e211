//! Persistence of tokens across restarts: the [`TokenStore`] trait and its implementations.

use crate::error::Error;
use crate::future::BoxFuture;
use crate::token::{RefreshToken, Token};

#[cfg(feature = "file-store")]
mod file;
#[cfg(feature = "keyring")]
mod keyring;
mod memory;
mod observed;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "file-store")]
pub use file::FileStore;
#[cfg(feature = "keyring")]
pub use keyring::KeyringStore;
pub use memory::MemoryStore;
pub use observed::{ObservedStore, StoreChange};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};

/// Keeps tokens (above all refresh tokens) so that a login survives a restart.
///
/// Keys name one login or one client configuration; sources derive them from everything that
/// makes their tokens differ. Implementations must make `save` durable before it returns: the
/// cache hands out a rotated token only after `save` succeeded.
///
/// The contract every store keeps (`testing::store_conformance` checks it):
///
/// - **Refresh under the lock.** The cache takes [`lock`](Self::lock), re-reads the key,
///   refreshes only if still needed, saves, and releases. A brand-new sign-in saves under
///   the same lock.
/// - **Revoked logins are compare-and-deleted.** After the provider rejects a refresh token
///   as a dead grant, the cache calls
///   [`delete_if_refresh_token`](Self::delete_if_refresh_token) with the lock held: the
///   login is removed only if it still holds the rejected refresh token, so a newer login
///   saved meanwhile (another process's refresh, a new sign-in) survives.
/// - **Lock waits are bounded and cancellable.** A holder that hangs must not block the
///   others forever: `lock` gives up with [`Error::LockTimeout`] after a bound the store
///   documents, and dropping its future stops the wait (no thread left blocked on it).
///
/// The trait is dyn-compatible; implement it with `Box::pin(async move { .. })`.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The token saved under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be read, or holds something unreadable.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>>;

    /// Saves `token` under `key`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the token could not be saved durably.
    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>>;

    /// Removes what is saved under `key`. Removing nothing is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be changed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Deletes the login under `key` only if it still holds the refresh token `rejected`
    /// (compare-and-delete), and says whether it deleted anything.
    ///
    /// The cache calls this, with [`lock`](Self::lock) held for `key`, after the provider
    /// rejected `rejected` as a dead grant: a login that another process saved meanwhile
    /// (a newer refresh token, or a new sign-in) must survive. Every store must keep that
    /// rule; `testing::store_conformance` checks it. The default loads, compares and deletes,
    /// which is correct as long as every writer of `key` holds the lock while it writes;
    /// a store whose writers can bypass the lock must override it with an atomic operation.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be read or changed.
    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let still_there = match self.load(key).await? {
                Some(saved) => saved.refresh_token() == Some(rejected),
                None => false,
            };
            if still_there {
                self.delete(key).await?;
            }
            Ok(still_there)
        })
    }

    /// Takes an exclusive lock on `key` for one refresh, across every process that shares the
    /// store, so that two processes never spend the same refresh token. Held until the
    /// returned guard is dropped.
    ///
    /// The default takes no lock: right for stores only one process uses.
    ///
    /// The wait must be bounded (fail with [`Error::LockTimeout`]) and must end when the
    /// returned future is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] when another holder kept the lock past the store's bound;
    /// [`Error::Store`] when the lock cannot be taken.
    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        let _ = key;
        Box::pin(async { Ok(StoreLock::none()) })
    }
}

/// A lock taken by [`TokenStore::lock`]; released when dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct StoreLock(#[allow(dead_code)] Option<Box<dyn Send + Sync>>);

impl StoreLock {
    /// A guard that holds no lock.
    pub fn none() -> Self {
        StoreLock(None)
    }

    /// Wraps whatever releases the lock when dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        StoreLock(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

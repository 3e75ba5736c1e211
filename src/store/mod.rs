//! Persistence of tokens across restarts: the [`TokenStore`] trait and its implementations.

use crate::error::Error;
use crate::source::BoxFuture;
use crate::token::Token;

#[cfg(feature = "file-store")]
mod file;
mod memory;
mod observed;

#[cfg(feature = "file-store")]
pub use file::FileStore;
pub use memory::MemoryStore;
pub use observed::{ObservedStore, StoreChange};

/// Keeps tokens (above all refresh tokens) so that a login survives a restart.
///
/// Keys name one login or one client configuration; sources derive them from everything that
/// makes their tokens differ. Implementations must make `save` durable before it returns: the
/// cache hands out a rotated token only after `save` succeeded.
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

    /// Takes an exclusive lock on `key` for one refresh, across every process that shares the
    /// store, so that two processes never spend the same refresh token. Held until the
    /// returned guard is dropped.
    ///
    /// The default takes no lock: right for stores only one process uses.
    ///
    /// # Errors
    ///
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

//! The [`TokenStore`] trait, the contract every store keeps, and the lock it hands out.

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::process_lock;
use crate::token::{RefreshToken, Token};

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
///
/// # Writing your own store
///
/// A store for a database, a secrets manager or a service of your own needs four things:
///
/// 1. **`load`, `save`, `delete`** by key. `save` returns only once the token is durable: the
///    cache hands out a rotated token after `save` succeeds, and a rotated refresh token that
///    was not saved is lost for good. Keep every field of the [`Token`] (serialize it with
///    `serde`; it round-trips). Report failures with [`Error::store`], never with a secret in
///    the message.
/// 2. **`lock`, if more than one process shares the store** (the default takes no lock, which
///    is right for one process only). While one holder has the guard for a key, every other
///    `lock` of that key, in any process, waits; the lock is released when the guard
///    ([`StoreLock::new`] wraps whatever releases it) is dropped, and must also end if its
///    holder dies (an expiring lease, a lock the OS drops with the process). The wait is
///    bounded: give up with [`Error::LockTimeout`] after a bound you document, and stop
///    waiting when the future is dropped. `load`, `save` and `delete` must work while the
///    lock is held: the cache re-reads and saves under it.
/// 3. **Compare-and-delete.** [`delete_if_refresh_token`](Self::delete_if_refresh_token)
///    removes a login only if it still holds the rejected refresh token. The default
///    (load, compare, delete) is right when every writer takes the lock; if something can
///    write the key without it, override it with one atomic operation of your backend
///    (a conditional delete, a transaction, a script).
/// 4. **Check it** with `authed::testing::store_conformance` (every rule above but
///    exclusion) and, for a store that locks, `authed::testing::store_lock_conformance`,
///    from a test with the `testing` feature (a dev-dependency on `authed` with
///    `features = ["testing"]`).
///
/// A store in one process's memory, with a lock per key that waits at most 5 seconds:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// use authed::{BoxFuture, Error, StoreLock, Token, TokenStore};
///
/// #[derive(Debug, Default)]
/// struct MyStore {
///     tokens: Mutex<HashMap<String, Token>>,
///     locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
/// }
///
/// impl TokenStore for MyStore {
///     fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
///         Box::pin(async move { Ok(self.tokens.lock().unwrap().get(key).cloned()) })
///     }
///
///     fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
///         Box::pin(async move {
///             self.tokens.lock().unwrap().insert(key.to_owned(), token.clone());
///             Ok(())
///         })
///     }
///
///     fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
///         Box::pin(async move {
///             self.tokens.lock().unwrap().remove(key);
///             Ok(())
///         })
///     }
///
///     fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
///         let lock = self.locks.lock().unwrap().entry(key.to_owned()).or_default().clone();
///         Box::pin(async move {
///             let wait = Duration::from_secs(5);
///             // Dropping this future stops the wait; the guard releases the lock on drop.
///             match tokio::time::timeout(wait, lock.lock_owned()).await {
///                 Ok(guard) => Ok(StoreLock::new(guard)),
///                 Err(_) => Err(Error::LockTimeout { waited: wait }),
///             }
///         })
///     }
/// }
///
/// # #[tokio::main]
/// # async fn main() {
/// let store = Arc::new(MyStore::default());
/// authed::testing::store_conformance(store.clone()).await;
/// authed::testing::store_lock_conformance(store).await;
/// # }
/// ```
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
    /// The default locks within this process only (per store instance and key, waiting at
    /// most 30 s): right for stores only one process uses, and it keeps two sources of one
    /// login in this process from refreshing at once.
    ///
    /// The wait must be bounded (fail with [`Error::LockTimeout`]) and must end when the
    /// returned future is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] when another holder kept the lock past the store's bound;
    /// [`Error::Store`] when the lock cannot be taken.
    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        // The store's address names its locks: each instance has its own.
        let owner = std::ptr::from_ref(self).cast::<()>() as usize;
        Box::pin(async move {
            let guard = process_lock::lock(owner, key, process_lock::PROCESS_LOCK_WAIT).await?;
            Ok(StoreLock::new(guard))
        })
    }

    /// Whether the lock taken with [`lock`](Self::lock) on `key` through this handle is still
    /// held. The cache asks right before it sends a refresh request: a holder whose lock ran
    /// out (a lease that expired while the process was stopped) must not send.
    ///
    /// The default says `true`: right for a lock that cannot be lost while its holder lives
    /// (an OS file lock, a lock in this process). A store whose lock is a lease that can
    /// expire ([`RedisStore`](crate::RedisStore), a database row with a timeout) checks it
    /// here, against the store.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be asked.
    fn lock_is_held<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = key;
        Box::pin(async { Ok(true) })
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

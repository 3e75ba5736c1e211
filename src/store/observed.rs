use std::sync::Arc;

use crate::error::Error;
use crate::future::BoxFuture;
use crate::login::is_tombstone_key;
use crate::store::{StoreLock, TokenStore};
use crate::token::{RefreshToken, Token};

/// A change an [`ObservedStore`] reports.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StoreChange<'a> {
    /// `token` was saved under `key` (a sign-in, or a refresh that may have rotated the
    /// refresh token).
    Saved {
        /// The login's key.
        key: &'a str,
        /// The token now stored.
        token: &'a Token,
    },
    /// The login under `key` was removed (logout, or a revoked grant).
    Deleted {
        /// The login's key.
        key: &'a str,
    },
}

type Hook = dyn Fn(StoreChange<'_>) + Send + Sync;

/// Wraps a store and calls a function after every successful save and delete: for keeping
/// tokens in your own database or session, or updating a UI when the user is signed out.
///
/// The hook runs after the inner store succeeded and before the token is handed out; keep
/// it quick (it must not block on async work). It sees logins only: not the records the
/// crate keeps beside them (that a refresh is in flight, that a login ended).
///
/// ```
/// use std::sync::Arc;
/// use authed::{MemoryStore, ObservedStore, StoreChange};
///
/// let store = ObservedStore::new(MemoryStore::new(), |change| match change {
///     StoreChange::Saved { key, .. } => println!("login {key} updated"),
///     StoreChange::Deleted { key } => println!("login {key} removed"),
///     _ => {}
/// });
/// let store = Arc::new(store);
/// ```
pub struct ObservedStore<S> {
    inner: S,
    hook: Arc<Hook>,
}

impl<S: TokenStore> ObservedStore<S> {
    /// Calls `hook` on every change made through this store.
    pub fn new(inner: S, hook: impl Fn(StoreChange<'_>) + Send + Sync + 'static) -> Self {
        ObservedStore {
            inner,
            hook: Arc::new(hook),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for ObservedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> TokenStore for ObservedStore<S> {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        self.inner.load(key)
    }

    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.inner.save(key, token).await?;
            // The record that a login ended, or that a refresh of it is in flight, is the
            // crate's bookkeeping: the login's tokens did not change.
            let bookkeeping =
                is_tombstone_key(key) || token.lineage().is_some_and(|l| l.refreshing.is_some());
            if !bookkeeping {
                (self.hook)(StoreChange::Saved { key, token });
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.inner.delete(key).await?;
            if !is_tombstone_key(key) {
                (self.hook)(StoreChange::Deleted { key });
            }
            Ok(())
        })
    }

    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let deleted = self.inner.delete_if_refresh_token(key, rejected).await?;
            if deleted {
                (self.hook)(StoreChange::Deleted { key });
            }
            Ok(deleted)
        })
    }

    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        self.inner.lock(key)
    }

    fn lock_is_held<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        self.inner.lock_is_held(key)
    }
}

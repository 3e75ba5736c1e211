//! A lock per key within this process: what [`TokenStore::lock`](crate::TokenStore::lock)
//! takes by default, and what [`MemoryStore`](crate::MemoryStore) uses. Two token caches of
//! one login in one process (a source evicted from a registry while its refresh runs, and the
//! one that replaced it) then never refresh at once, whatever the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::error::Error;

/// How long the default lock waits for another holder in this process.
pub(crate) const PROCESS_LOCK_WAIT: Duration = Duration::from_secs(30);

type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// The lock of `key` among the locks of `owner` (a store's address: each store instance has
/// its own), waiting at most `wait`. Dropping the returned future stops the wait.
pub(crate) async fn lock(
    owner: usize,
    key: &str,
    wait: Duration,
) -> Result<tokio::sync::OwnedMutexGuard<()>, Error> {
    let lock = {
        static LOCKS: OnceLock<Mutex<HashMap<(usize, String), KeyLock>>> = OnceLock::new();
        let mut locks = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Forget locks nobody holds or waits for: the map holds only keys in use.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry((owner, key.to_owned())).or_default().clone()
    };
    match tokio::time::timeout(wait, lock.lock_owned()).await {
        Ok(guard) => Ok(guard),
        Err(_) => Err(Error::LockTimeout { waited: wait }),
    }
}

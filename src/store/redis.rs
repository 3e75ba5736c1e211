use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::{StoreLock, TokenStore};
use crate::token::{RefreshToken, Token};

/// Keeps tokens in Redis, shared by every replica of a service, with a distributed refresh
/// lock so that the whole fleet makes one token request per expiry and spends each rotated
/// refresh token exactly once.
///
/// Per key (login) it uses three Redis keys under the prefix (default `authed:`), all with
/// the same hash tag so they live in one slot: `{key}:token` (a hash holding the token's JSON
/// and its fence), `{key}:lock` (the refresh lock) and `{key}:fence` (a counter).
///
/// The refresh lock ([`lock`](TokenStore::lock)):
/// - **expires**: it is taken with a time to live ([`lock_ttl`](RedisStoreBuilder::lock_ttl),
///   10 s by default), so a holder that crashed or lost its network blocks the fleet for at
///   most that long;
/// - **is renewed** every third of its time to live while the guard is held, so a slow
///   token request (retries, a slow provider) keeps it;
/// - **is fenced**: each grant of the lock gets the next value of the key's counter (a
///   fencing token). Every write (`save`, `delete`, [`delete_if_refresh_token`](
///   TokenStore::delete_if_refresh_token)) runs as one Lua script that checks, atomically with
///   the write, that the lock is still held under this fence and that the stored token was
///   not written under a newer one. A holder whose lock expired gets [`Error::Store`] instead
///   of overwriting a newer token;
/// - **waits a bounded time**: a second holder polls until the lock is free, for at most
///   [`lock_wait`](RedisStoreBuilder::lock_wait) (30 s by default), then gets
///   [`Error::LockTimeout`]. Dropping the waiting future stops the wait;
/// - **is checked before a refresh is sent**: [`lock_is_held`](TokenStore::lock_is_held)
///   asks Redis whether the lock is still held under this handle's fence, so a holder that
///   was stopped past its lease does not send.
///
/// A write through a handle that does not hold the key's lock (for example the save of a
/// brand-new sign-in) takes the lock itself for that one write, so it never lands in the
/// middle of another replica's refresh. Writes through a handle (and its clones) that holds
/// the key's lock run under that lock: the token cache saves while it holds it.
///
/// Commands time out after 5 s (a Redis that stops answering is an [`Error::Store`], not a
/// hang); the connection reconnects by itself. Tokens are stored as JSON in plain text:
/// protect the Redis server (ACLs, TLS with a `rediss://` URL, a private network) as you
/// would a database of passwords.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use std::{sync::Arc, time::Duration};
/// use authed::{RedisStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(
///     RedisStore::builder("redis://127.0.0.1:6379/")
///         .prefix("billing-service:")
///         .lock_ttl(Duration::from_secs(10))
///         .build()
///         .await?,
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    lock_ttl: Duration,
    lock_wait: Duration,
    /// The locks this handle holds: key → fence. At most one per key, since the lock
    /// excludes every other holder.
    held: Mutex<HashMap<String, Arc<Held>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("lock_ttl", &self.lock_ttl)
            .field("lock_wait", &self.lock_wait)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Held {
    fence: u64,
    /// Set when a renewal found the lock gone: writes fail without asking Redis.
    lost: AtomicBool,
}

/// Settings for a [`RedisStore`]; made by [`RedisStore::builder`]. `Debug` leaves out the
/// URL, which may carry a password.
#[derive(Clone)]
#[must_use = "call build() to connect"]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    lock_ttl: Duration,
    lock_wait: Duration,
    command_timeout: Duration,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("lock_ttl", &self.lock_ttl)
            .field("lock_wait", &self.lock_wait)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

// How long a refresh lock lives without renewal, unless set.
const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);
// How long RedisStore waits for a refresh lock, unless set.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_LOCK_TTL: Duration = Duration::from_millis(100);

impl RedisStoreBuilder {
    /// The prefix of every Redis key the store uses (default `authed:`). Give each
    /// application its own when several share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long the refresh lock lives if its holder stops renewing it (crashed, hung, cut
    /// off): the longest a dead holder blocks the fleet. Default 10 s; at least 100 ms.
    /// The holder renews it every third of this while it refreshes.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// How long [`lock`](TokenStore::lock) (and a write that must take the lock) waits for
    /// another holder before it fails with [`Error::LockTimeout`]. Default 30 s.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long one Redis command may take before it fails with [`Error::Store`]; also the
    /// connect timeout. Default 5 s.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Connects to Redis.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is not a Redis URL or the lock time to live is below
    /// 100 ms; [`Error::Store`] when Redis cannot be reached.
    pub async fn build(self) -> Result<RedisStore, Error> {
        if self.lock_ttl < MIN_LOCK_TTL {
            return Err(Error::config("RedisStore lock_ttl must be at least 100 ms"));
        }
        // Not the parser's message: the URL may hold a password.
        let client = Client::open(self.url.as_str()).map_err(|_| {
            Error::config("invalid Redis URL (expected redis://, rediss:// or redis+unix://)")
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.command_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis_error)?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: self.prefix,
                lock_ttl: self.lock_ttl,
                lock_wait: self.lock_wait,
                held: Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn redis_error(e: ::redis::RedisError) -> Error {
    Error::store(io::Error::other(format!("redis: {e}")))
}

fn store_error(message: &str) -> Error {
    Error::store(io::Error::other(message.to_owned()))
}

// KEYS[1] lock, KEYS[2] fence counter; ARGV[1] ttl in ms.
// Returns the new fence, or 0 if someone holds the lock.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence
";

// KEYS[1] lock; ARGV[1] fence, ARGV[2] ttl in ms. 1 if renewed, 0 if the lock is gone.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

// KEYS[1] lock; ARGV[1] fence. 1 if the lock is still held under this fence.
const HELD: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
";

// KEYS[1] lock; ARGV[1] fence. Deletes the lock only if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

// The fence check shared by every write: the lock must still be held under ARGV[1], and the
// stored token must not have been written under a newer fence.
const FENCE_CHECK: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local stored = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if stored > tonumber(ARGV[1]) then return -1 end
";

// KEYS[1] token, KEYS[2] lock; ARGV[1] fence, ARGV[2] token JSON, ARGV[3] refresh token.
const SAVE: &str = r"
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'refresh', ARGV[3], 'fence', ARGV[1])
return 1
";

// KEYS[1] token, KEYS[2] lock; ARGV[1] fence.
const DELETE: &str = r"
redis.call('DEL', KEYS[1])
return 1
";

// KEYS[1] token, KEYS[2] lock; ARGV[1] fence, ARGV[2] the rejected refresh token.
// 1 if deleted, 0 if the key holds another login (or nothing).
const DELETE_IF: &str = r"
local saved = redis.call('HGET', KEYS[1], 'refresh')
if saved and saved ~= '' and saved == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

struct Scripts {
    acquire: Script,
    held: Script,
    renew: Script,
    release: Script,
    save: Script,
    delete: Script,
    delete_if: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let fenced = |body: &str| Script::new(&format!("{FENCE_CHECK}{body}"));
        Scripts {
            acquire: Script::new(ACQUIRE),
            held: Script::new(HELD),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            save: fenced(SAVE),
            delete: fenced(DELETE),
            delete_if: fenced(DELETE_IF),
        }
    })
}

impl RedisStore {
    /// Settings for a store on the Redis at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` for TLS when the redis crate is built with TLS, `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "authed:".to_owned(),
            lock_ttl: DEFAULT_LOCK_TTL,
            lock_wait: DEFAULT_LOCK_WAIT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Connects with the default settings: `RedisStore::builder(url).build()`.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::build`].
    pub async fn connect(url: impl Into<String>) -> Result<RedisStore, Error> {
        RedisStore::builder(url).build().await
    }

    fn name(&self, key: &str, what: &str) -> String {
        // The hash tag keeps a login's keys in one cluster slot (scripts touch several).
        format!("{}{{{key}}}:{what}", self.inner.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The lock this handle holds on `key`, if any.
    fn held(&self, key: &str) -> Option<Arc<Held>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Waits (bounded) for the lock on `key` and returns its fence.
    async fn acquire(&self, key: &str) -> Result<u64, Error> {
        let (lock, counter) = (self.name(key, "lock"), self.name(key, "fence"));
        let ttl_ms = millis(self.inner.lock_ttl);
        let wait = async {
            let mut pause = Duration::from_millis(5);
            loop {
                let fence: u64 = scripts()
                    .acquire
                    .key(&lock)
                    .key(&counter)
                    .arg(ttl_ms)
                    .invoke_async(&mut self.conn())
                    .await
                    .map_err(redis_error)?;
                if fence != 0 {
                    return Ok(fence);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        };
        match tokio::time::timeout(self.inner.lock_wait, wait).await {
            Ok(result) => result,
            // The TokenStore contract: a wait that runs out is a lock timeout, which callers
            // may retry, not a failed store.
            Err(_) => Err(Error::LockTimeout {
                waited: self.inner.lock_wait,
            }),
        }
    }

    /// Runs a fenced write script under the lock this handle holds on `key`, or under a lock
    /// taken for this write alone. Returns the script's result (`-1` never: that is an error).
    async fn fenced(&self, key: &str, script: &Script, args: &[&str]) -> Result<i64, Error> {
        let (result, own) = match self.held(key) {
            Some(held) => {
                if held.lost.load(Ordering::SeqCst) {
                    return Err(lost());
                }
                (self.run_fenced(key, script, held.fence, args).await, None)
            }
            None => {
                let fence = self.acquire(key).await?;
                let result = self.run_fenced(key, script, fence, args).await;
                (result, Some(fence))
            }
        };
        if let Some(fence) = own {
            self.release(key, fence).await;
        }
        match result? {
            -1 => Err(lost()),
            n => Ok(n),
        }
    }

    async fn run_fenced(
        &self,
        key: &str,
        script: &Script,
        fence: u64,
        args: &[&str],
    ) -> Result<i64, Error> {
        let mut invocation = script.key(self.name(key, "token"));
        invocation.key(self.name(key, "lock")).arg(fence);
        for a in args {
            invocation.arg(*a);
        }
        invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)
    }

    async fn release(&self, key: &str, fence: u64) {
        let released: Result<i64, _> = scripts()
            .release
            .key(self.name(key, "lock"))
            .arg(fence)
            .invoke_async(&mut self.conn())
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release the Redis refresh lock; it expires by itself");
        }
    }
}

fn lost() -> Error {
    store_error(
        "the Redis refresh lock expired before the write; another process may hold a newer token, so this one was not written",
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Held while a [`RedisStore`] lock is: renews it, and releases it when dropped.
struct Guard {
    store: RedisStore,
    key: String,
    held: Arc<Held>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.renewal.abort();
        {
            let mut held = self
                .store
                .inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if held
                .get(&self.key)
                .is_some_and(|h| Arc::ptr_eq(h, &self.held))
            {
                held.remove(&self.key);
            }
        }
        // Without a runtime the lock is left to expire.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key, fence) = (self.store.clone(), self.key.clone(), self.held.fence);
            runtime.spawn(async move { store.release(&key, fence).await });
        }
    }
}

impl TokenStore for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        Box::pin(async move {
            let json: Option<String> = ::redis::cmd("HGET")
                .arg(self.name(key, "token"))
                .arg("token")
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error)?;
            json.map(|j| {
                // serde_json's message names a line and column, never the content.
                serde_json::from_str(&j).map_err(|e| {
                    Error::store(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unreadable token in Redis: {e}"),
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
            let refresh = token.refresh_token().map_or("", RefreshToken::secret);
            self.fenced(key, &scripts().save, &[&json, refresh])
                .await
                .map(drop)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.fenced(key, &scripts().delete, &[]).await.map(drop) })
    }

    fn delete_if_refresh_token<'a>(
        &'a self,
        key: &'a str,
        rejected: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let deleted = self
                .fenced(key, &scripts().delete_if, &[rejected.secret()])
                .await?;
            Ok(deleted == 1)
        })
    }

    /// Asks Redis whether the lock this handle took on `key` is still held under its fence:
    /// a holder stopped past its lease (`SIGSTOP`, a long pause) finds it gone.
    fn lock_is_held<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let Some(held) = self.held(key) else {
                return Ok(false);
            };
            if held.lost.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let still: i64 = scripts()
                .held
                .key(self.name(key, "lock"))
                .arg(held.fence)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_error)?;
            Ok(still == 1)
        })
    }

    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, Error>> {
        Box::pin(async move {
            let fence = self.acquire(key).await?;
            let held = Arc::new(Held {
                fence,
                lost: AtomicBool::new(false),
            });
            self.inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned(), held.clone());
            let renewal = tokio::spawn(renew(self.clone(), key.to_owned(), held.clone()));
            Ok(StoreLock::new(Guard {
                store: self.clone(),
                key: key.to_owned(),
                held,
                renewal,
            }))
        })
    }
}

/// Renews the lock every third of its time to live until the guard aborts this task, or
/// the lock is found gone (then later writes fail at once).
async fn renew(store: RedisStore, key: String, held: Arc<Held>) {
    let ttl = store.inner.lock_ttl;
    let lock = store.name(&key, "lock");
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed: Result<i64, _> = scripts()
            .renew
            .key(&lock)
            .arg(held.fence)
            .arg(millis(ttl))
            .invoke_async(&mut store.conn())
            .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(
                    "the Redis refresh lock expired while held; writes under it will fail"
                );
                held.lost.store(true, Ordering::SeqCst);
                return;
            }
            // Try again at the next tick: the lock is still valid for two more thirds.
            Err(e) => tracing::warn!(error = %e, "could not renew the Redis refresh lock"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_leaves_out_the_url_and_its_password() {
        let builder = super::RedisStore::builder("redis://:hunter2@127.0.0.1:6379/0");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("6379"),
            "{shown}"
        );
    }
}

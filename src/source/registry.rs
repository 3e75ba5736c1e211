//! [`UserSources`]: the signed-in users of a multi-user app, one [`RefreshTokenSource`] each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::OAuthConfig;
use crate::error::Error;
use crate::source::RefreshTokenSource;
use crate::store::{IntoTokenStore, TokenStore};

/// The logins of the users of a web app (or any app serving many users), by store key:
/// what Duende's user-token management and Authlib's framework integrations keep per user.
///
/// - [`get`](Self::get) returns the user's [`RefreshTokenSource`], loading the login from
///   the store on first use. Every caller of one key gets the same source (one cache), so
///   a user's token is refreshed once however many requests are in flight, and a first
///   use by many requests at once reads the store once.
/// - [`insert`](Self::insert) takes the login a sign-in just completed (from
///   [`AuthorizationCode::complete`](crate::AuthorizationCode::complete) or
///   [`complete_as`](crate::AuthorizationCode::complete_as), stored under the ID token's
///   `sub` or the app's own key).
/// - Sources not used for [`idle_timeout`](UserSourcesBuilder::idle_timeout) are dropped
///   from memory; the store is not touched, and the next `get` loads the login again. At
///   most [`max_users`](UserSourcesBuilder::max_users) sources are kept: beyond that, the
///   least recently used one is dropped from memory (again, not from the store).
/// - [`remove`](Self::remove) forgets one in memory only; signing out is
///   [`RefreshTokenSource::logout`], which also revokes and deletes the stored login.
///
/// Send requests for a user through one shared [`AuthedClient`](crate::AuthedClient) with
/// [`RequestBuilder::source`](crate::RequestBuilder::source).
///
/// Cost: `get`, `insert` and `remove` are one hash-map operation under a short lock (never
/// held across an `.await`), plus a store read on a user's first use. Idle sources are swept
/// at most once per half idle timeout, in O(n) over the sources held, by whichever call
/// comes then (there is no background task); dropping the least recently used one when full
/// is also O(n), which only happens when the cap is reached. Memory is one source (a small
/// cache and its token) per user active within the idle timeout, and never more than
/// `max_users` sources.
///
/// A source dropped from memory while a request still holds it keeps working; that request
/// and a later `get` then briefly have two caches for one login, which the store's lock →
/// re-read → refresh rule keeps from spending a rotated refresh token twice.
///
/// Cloning is cheap and shares the registry.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authed::Error> {
/// use authed::{MemoryStore, OAuthConfig, UserSources};
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("web-app")
///     .build()?;
/// let users = UserSources::builder(config, MemoryStore::new()).build();
/// // Nobody signed in under this key yet.
/// assert!(users.get("user:42").await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UserSources {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OAuthConfig,
    store: Arc<dyn TokenStore>,
    idle_timeout: Duration,
    max_users: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    users: HashMap<Arc<str>, Slot>,
    next_sweep: Instant,
}

/// One user's source, or its first load from the store while that is in flight: the cell
/// makes concurrent first `get`s share one load and one source.
#[derive(Debug)]
struct Slot {
    source: Arc<OnceCell<RefreshTokenSource>>,
    last_used: Instant,
}

/// Builds [`UserSources`]; from [`UserSources::builder`].
#[derive(Debug)]
#[must_use]
pub struct UserSourcesBuilder {
    config: OAuthConfig,
    store: Arc<dyn TokenStore>,
    idle_timeout: Duration,
    max_users: usize,
}

/// Not the store's answer for a key: why a first load left no source.
enum Missing {
    NotStored,
    Failed(Error),
}

impl UserSources {
    /// Default [`idle_timeout`](UserSourcesBuilder::idle_timeout): 30 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    /// Default [`max_users`](UserSourcesBuilder::max_users): 100,000.
    pub const DEFAULT_MAX_USERS: usize = 100_000;

    /// A registry of the logins of `config`'s client, kept in `store`.
    pub fn builder(config: OAuthConfig, store: impl IntoTokenStore) -> UserSourcesBuilder {
        UserSourcesBuilder {
            config,
            store: store.into_token_store(),
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_users: Self::DEFAULT_MAX_USERS,
        }
    }

    /// The login stored under `key`: the source already in memory, or the login loaded from
    /// the store (with [`RefreshTokenSourceBuilder::from_store`](crate::RefreshTokenSourceBuilder::from_store)).
    /// `None` when the store has no login under `key` (sign the user in).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be read; the next `get` tries again.
    pub async fn get(&self, key: &str) -> Result<Option<RefreshTokenSource>, Error> {
        let cell = {
            let mut state = self.lock();
            let now = Instant::now();
            self.sweep(&mut state, now);
            match state.users.get_mut(key) {
                Some(slot) => {
                    slot.last_used = now;
                    slot.source.clone()
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    self.make_room(&mut state);
                    state.users.insert(
                        key.into(),
                        Slot {
                            source: cell.clone(),
                            last_used: now,
                        },
                    );
                    cell
                }
            }
        };
        let loaded = cell
            .get_or_try_init(|| async {
                let source = self
                    .inner
                    .config
                    .refresh_token_source()
                    .store(self.inner.store.clone())
                    .key(key)
                    .from_store()
                    .await
                    .map_err(Missing::Failed)?;
                source.ok_or(Missing::NotStored)
            })
            .await;
        match loaded {
            Ok(source) => Ok(Some(source.clone())),
            Err(missing) => {
                // Keys nobody is signed in under are not remembered: a stream of unknown
                // keys cannot fill memory.
                let mut state = self.lock();
                if state
                    .users
                    .get(key)
                    .is_some_and(|slot| Arc::ptr_eq(&slot.source, &cell) && !cell.initialized())
                {
                    state.users.remove(key);
                }
                match missing {
                    Missing::NotStored => Ok(None),
                    Missing::Failed(e) => Err(e),
                }
            }
        }
    }

    /// Keeps `login` (a sign-in just completed) under its [`key`](RefreshTokenSource::key),
    /// replacing any source held for that key. The login should be stored in this
    /// registry's store, so that it can be loaded again after it was idle.
    pub fn insert(&self, login: RefreshTokenSource) {
        let key: Arc<str> = login.key().into();
        let slot = Slot {
            source: Arc::new(OnceCell::new_with(Some(login))),
            last_used: Instant::now(),
        };
        let mut state = self.lock();
        self.sweep(&mut state, slot.last_used);
        if !state.users.contains_key(&key) {
            self.make_room(&mut state);
        }
        state.users.insert(key, slot);
    }

    /// Forgets the source held for `key`, in memory only (the stored login stays; sign out
    /// with [`RefreshTokenSource::logout`]). Returns it, when it was loaded.
    pub fn remove(&self, key: &str) -> Option<RefreshTokenSource> {
        let slot = self.lock().users.remove(key)?;
        slot.source.get().cloned()
    }

    /// Drops every source not used for the idle timeout now, without waiting for the next
    /// sweep. Returns how many were dropped. The store is not touched.
    pub fn evict_idle(&self) -> usize {
        let mut state = self.lock();
        let before = state.users.len();
        let now = Instant::now();
        state.next_sweep = now;
        self.sweep(&mut state, now);
        before - state.users.len()
    }

    /// How many sources are held in memory (loaded, or loading).
    pub fn len(&self) -> usize {
        self.lock().users.len()
    }

    /// Whether no source is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops idle sources, at most once per half idle timeout: O(n), amortised over the
    /// calls of that interval.
    fn sweep(&self, state: &mut State, now: Instant) {
        if now < state.next_sweep {
            return;
        }
        let idle = self.inner.idle_timeout;
        state
            .users
            .retain(|_, slot| now.saturating_duration_since(slot.last_used) < idle);
        state.next_sweep = now + idle / 2;
    }

    /// Before adding a source when full: drops the least recently used one (O(n)).
    fn make_room(&self, state: &mut State) {
        if state.users.len() < self.inner.max_users {
            return;
        }
        let oldest = state
            .users
            .iter()
            .min_by_key(|(_, slot)| slot.last_used)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            tracing::debug!("user source registry full; dropping the least recently used");
            state.users.remove(&key);
        }
    }
}

impl UserSourcesBuilder {
    /// How long a source may go unused before it is dropped from memory (the stored login
    /// stays). Default [`UserSources::DEFAULT_IDLE_TIMEOUT`].
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The most sources held in memory; beyond it the least recently used is dropped from
    /// memory (the stored login stays). At least 1. Default
    /// [`UserSources::DEFAULT_MAX_USERS`].
    pub fn max_users(mut self, max: usize) -> Self {
        self.max_users = max;
        self
    }

    /// The registry.
    pub fn build(self) -> UserSources {
        UserSources {
            inner: Arc::new(Inner {
                config: self.config,
                store: self.store,
                idle_timeout: self.idle_timeout,
                max_users: self.max_users.max(1),
                state: Mutex::new(State {
                    users: HashMap::new(),
                    next_sweep: Instant::now() + self.idle_timeout / 2,
                }),
            }),
        }
    }
}

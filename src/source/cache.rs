//! The token cache every grant shares: expiry margin, single-flight refresh, refresh ahead of
//! expiry in the background, a lock-free read of a valid token, and persistence of rotated
//! tokens before they are handed out.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::error::Error;
use crate::source::{BoxFuture, TokenFuture};
use crate::store::TokenStore;
use crate::token::{AccessToken, Clock, ExpiryPolicy, Token};

/// How one grant gets a new token. Implemented once per grant; the cache does the rest.
pub(crate) trait Grant: Send + Sync + std::fmt::Debug + 'static {
    /// Requests a new token. `current` is the token being replaced, if any: the refresh grant
    /// takes its refresh token from it. `now` is when the request starts, the base of the new
    /// token's expiry.
    fn fetch<'a>(
        &'a self,
        current: Option<&'a Token>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Token, Error>>;
}

/// Where a cache keeps what must survive a restart.
#[derive(Debug, Clone)]
pub(crate) struct Persist {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) key: String,
}

/// A cheap handle; clones share one cache.
#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    current: ArcSwapOption<Cached>,
    state: Mutex<State>,
    grant: Box<dyn Grant>,
    policy: ExpiryPolicy,
    clock: Arc<dyn Clock>,
    persist: Option<Persist>,
}

/// A token with its deadlines worked out once, so the read path only compares times.
#[derive(Debug)]
struct Cached {
    token: Arc<Token>,
    valid_until: Option<SystemTime>,
    refresh_at: Option<SystemTime>,
}

type Outcome = Option<Result<Arc<Token>, Error>>;

/// Everything behind the slow path. Only held briefly, never across an `.await`.
#[derive(Debug, Default)]
struct State {
    /// The token request in flight; every caller that needs a token waits on this one.
    flight: Option<watch::Receiver<Outcome>>,
    /// After a failed background refresh, none starts again before this.
    background_not_before: Option<SystemTime>,
    background_failures: u32,
    /// A token the grant returned but the store failed to save. Its refresh token may be the
    /// only valid one left, so it is kept and saved before anything else happens.
    unsaved: Option<Token>,
}

/// Backoff after failed background refreshes: 1 s, 2 s, 4 s ... up to 64 s.
fn background_backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6))
}

// `peek`, `seed`, `clear` and `persist` serve the user sign-in flows.
#[allow(dead_code)]
impl TokenCache {
    pub(crate) fn new(
        grant: impl Grant,
        policy: ExpiryPolicy,
        clock: Arc<dyn Clock>,
        persist: Option<Persist>,
    ) -> Self {
        TokenCache {
            shared: Arc::new(Shared {
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                grant: Box::new(grant),
                policy,
                clock,
                persist,
            }),
        }
    }

    /// A valid token. The fast path is one atomic load and a time comparison: no lock, no
    /// allocation, no waiting on a refresh in progress.
    pub(crate) fn token(&self) -> TokenFuture<'_> {
        let now = self.shared.clock.now();
        if let Some(cached) = &*self.shared.current.load() {
            if cached.valid_until.is_none_or(|until| now < until) {
                if cached.refresh_at.is_some_and(|at| now >= at) {
                    self.refresh_in_background(now);
                }
                return TokenFuture::ready(Ok(cached.token.clone()));
            }
        }
        TokenFuture::new(self.fresh(None))
    }

    /// A token other than `rejected`, refreshing once however many callers report it.
    pub(crate) fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        TokenFuture::new(self.fresh(Some(rejected.access_token())))
    }

    /// The cached token, valid or not.
    pub(crate) fn peek(&self) -> Option<Arc<Token>> {
        self.shared.current.load().as_ref().map(|c| c.token.clone())
    }

    /// Installs a token obtained outside the cache (an authorization code exchange), saving it
    /// first when the cache persists.
    pub(crate) async fn seed(&self, token: Token) -> Result<Arc<Token>, Error> {
        if let Some(p) = &self.shared.persist {
            p.store.save(&p.key, &token).await?;
        }
        let token = Arc::new(token);
        self.shared.install(token.clone());
        Ok(token)
    }

    /// Forgets the cached token (not the stored one).
    pub(crate) fn clear(&self) {
        self.shared.current.store(None);
        self.shared.lock().unsaved = None;
    }

    pub(crate) fn persist(&self) -> Option<&Persist> {
        self.shared.persist.as_ref()
    }

    fn refresh_in_background(&self, now: SystemTime) {
        // Readers must never block: if someone holds the lock, they are refreshing already.
        let Ok(mut state) = self.shared.state.try_lock() else {
            return;
        };
        if state.flight.is_some() || state.background_not_before.is_some_and(|t| now < t) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tracing::debug!("token enters its refresh window; refreshing in the background");
        let _ = self.shared.start_flight(&mut state, true);
    }

    async fn fresh(&self, rejected: Option<&AccessToken>) -> Result<Arc<Token>, Error> {
        let mut rx = {
            let mut state = self.shared.lock();
            if let Some(cached) = &*self.shared.current.load() {
                let was_rejected = rejected.is_some_and(|r| r == cached.token.access_token());
                let now = self.shared.clock.now();
                if !was_rejected && cached.valid_until.is_none_or(|until| now < until) {
                    return Ok(cached.token.clone());
                }
            }
            match &state.flight {
                Some(rx) => rx.clone(),
                None => {
                    if tokio::runtime::Handle::try_current().is_err() {
                        return Err(Error::config("authed needs a Tokio runtime"));
                    }
                    self.shared.start_flight(&mut state, false)
                }
            }
        };
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().expect("waited for Some"),
            Err(_) => Err(Error::config(
                "the token refresh task ended without a result",
            )),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn install(&self, token: Arc<Token>) {
        let valid_until = self.policy.valid_until(&token);
        let refresh_at = self.policy.refresh_at(&token);
        self.current.store(Some(Arc::new(Cached {
            token,
            valid_until,
            refresh_at,
        })));
    }

    /// Starts the one token request. It runs as its own task so that a caller that gives up
    /// waiting cannot cancel it halfway, between a provider rotating the refresh token and
    /// the store saving it.
    fn start_flight(
        self: &Arc<Self>,
        state: &mut State,
        background: bool,
    ) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        state.flight = Some(rx.clone());
        let shared = self.clone();
        tokio::spawn(async move {
            let result = shared.refresh().await;
            {
                let mut state = shared.lock();
                state.flight = None;
                match &result {
                    Ok(_) => {
                        state.background_failures = 0;
                        state.background_not_before = None;
                    }
                    Err(e) if background => {
                        state.background_failures += 1;
                        let wait = background_backoff(state.background_failures);
                        state.background_not_before = Some(shared.clock.now() + wait);
                        tracing::warn!(
                            error = %e,
                            retry_in_secs = wait.as_secs(),
                            "background token refresh failed; still using the current token"
                        );
                    }
                    Err(_) => {}
                }
            }
            let _ = tx.send(Some(result));
        });
        rx
    }

    /// One refresh: with a store, under its lock, re-reading what another process may have
    /// saved; then the grant; then save before install.
    async fn refresh(&self) -> Result<Arc<Token>, Error> {
        let mut base = self.current.load().as_ref().map(|c| c.token.clone());
        let Some(persist) = &self.persist else {
            return self.fetch(base).await;
        };
        let _lock = persist.store.lock(&persist.key).await?;

        let unsaved = self.lock().unsaved.take();
        if let Some(token) = unsaved {
            if let Err(e) = persist.store.save(&persist.key, &token).await {
                self.lock().unsaved = Some(token);
                return Err(e);
            }
            base = Some(Arc::new(token));
        }

        if let Some(stored) = persist.store.load(&persist.key).await? {
            let is_other = base
                .as_ref()
                .is_none_or(|b| b.access_token() != stored.access_token());
            if is_other {
                // Another process (or an earlier run) saved a newer token: its refresh token
                // is the live one, and the token itself may still be good.
                let stored = Arc::new(stored);
                if stored.is_valid_at(self.clock.now(), &self.policy) {
                    tracing::debug!("using the token another process saved");
                    self.install(stored.clone());
                    return Ok(stored);
                }
                base = Some(stored);
            }
        }
        if let Some(b) = &base {
            let unchanged = self
                .current
                .load()
                .as_ref()
                .is_some_and(|c| c.token.access_token() == b.access_token());
            if !unchanged && b.is_valid_at(self.clock.now(), &self.policy) {
                self.install(b.clone());
                return Ok(b.clone());
            }
        }
        self.fetch(base).await
    }

    async fn fetch(&self, base: Option<Arc<Token>>) -> Result<Arc<Token>, Error> {
        let now = self.clock.now();
        match self.grant.fetch(base.as_deref(), now).await {
            Ok(mut token) => {
                if let Some(b) = &base {
                    token.keep_refresh_token_from(b);
                }
                if let Some(p) = &self.persist {
                    if let Err(e) = p.store.save(&p.key, &token).await {
                        tracing::warn!(error = %e, "could not save the new token; it is kept in memory and saved before the next use");
                        self.lock().unsaved = Some(token);
                        return Err(e);
                    }
                }
                tracing::debug!(token_type = token.token_type(), "new token");
                let token = Arc::new(token);
                self.install(token.clone());
                Ok(token)
            }
            Err(e) if e.is_revoked() => {
                // Revoked means stop: forget the login so nothing keeps presenting it.
                self.current.store(None);
                self.lock().unsaved = None;
                if let Some(p) = &self.persist {
                    if let Err(delete) = p.store.delete(&p.key).await {
                        tracing::warn!(error = %delete, "could not delete the revoked login from the store");
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(background_backoff(1), Duration::from_secs(1));
        assert_eq!(background_backoff(2), Duration::from_secs(2));
        assert_eq!(background_backoff(4), Duration::from_secs(8));
        assert_eq!(background_backoff(50), Duration::from_secs(64));
    }
}

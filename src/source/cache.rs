//! The token cache every grant shares: expiry margin, single-flight refresh, refresh ahead of
//! expiry in the background, a lock-free read of a valid token, and persistence of rotated
//! tokens before they are handed out.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::clock::Clock;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::source::TokenFuture;
use crate::store::TokenStore;
use crate::telemetry::{self, CacheMetrics};
use crate::token::{AccessToken, ExpiryPolicy, RefreshToken, Token};

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
    /// The token, read with one atomic load.
    current: ArcSwapOption<Cached>,
    state: Mutex<State>,
    grant: Box<dyn Grant>,
    policy: ExpiryPolicy,
    clock: Arc<dyn Clock>,
    persist: Option<Persist>,
    /// Held by every use of the login's refresh token in this process: the cache's own
    /// refreshes and [`refresh_for`](TokenCache::refresh_for)'s, so that each reads the
    /// refresh token the previous one left (the store's lock does the same across
    /// processes).
    rotation: tokio::sync::Mutex<()>,
    /// Hit and miss counters (feature `metrics`; empty without it).
    metrics: CacheMetrics,
}

/// A token with its deadlines worked out once, so the read path only compares times.
#[derive(Debug)]
struct Cached {
    token: Arc<Token>,
    valid_until: Option<SystemTime>,
    refresh_at: Option<SystemTime>,
}

enum Phase {
    Fresh,
    RefreshDue,
    Expired,
}

impl Cached {
    fn phase(&self, now: SystemTime) -> Phase {
        if self.valid_until.is_some_and(|until| now >= until) {
            Phase::Expired
        } else if self.refresh_at.is_some_and(|at| now >= at) {
            Phase::RefreshDue
        } else {
            Phase::Fresh
        }
    }

    /// How long background refreshes have before callers must wait.
    fn refresh_window(&self) -> Option<Duration> {
        self.valid_until?.duration_since(self.refresh_at?).ok()
    }
}

type Outcome = Option<Result<Arc<Token>, Error>>;

/// Everything behind the slow path. Only held briefly, never across an `.await`.
#[derive(Debug, Default)]
struct State {
    /// The token request in flight; every caller that needs a token waits on this one.
    flight: Option<watch::Receiver<Outcome>>,
    /// After a failed refresh, none starts again before this: not in the background, and
    /// not for callers without a valid token, who get `last_error` at once instead. So the
    /// number of token requests follows the backoff schedule, not the number of callers.
    not_before: Option<SystemTime>,
    /// Failed refreshes in a row.
    failures: u32,
    /// The error of the last failed refresh, while `not_before` holds.
    last_error: Option<Error>,
    /// A token the grant returned but the store failed to save. Its refresh token may be the
    /// only valid one left, so it is kept and saved before anything else happens, unless the
    /// store meanwhile got a newer login.
    unsaved: Option<Unsaved>,
}

#[derive(Debug)]
struct Unsaved {
    token: Token,
    /// The refresh token the grant spent to get `token`. While the store still holds it,
    /// nobody else saved since, and `token` is the newest login.
    spent: Option<RefreshToken>,
}

/// Whether a failed refresh from `base` ends the login: a revoked grant; or `invalid_target`
/// (RFC 8707) to a refresh, since some providers (oidc-provider 9) rotate the refresh token
/// before they check the resource and never send the new one: presenting the old one again
/// would look like theft and revoke the whole grant (RFC 9700 §4.14.2). Its outcome is
/// unknown, so it is not presented again (DESIGN principle 3).
fn ends_login(e: &Error, base: Option<&Token>) -> bool {
    let refreshed = base.is_some_and(|b| b.refresh_token().is_some());
    e.is_revoked() || (refreshed && e.oauth_error().is_some_and(|o| o.error == "invalid_target"))
}

/// Backoff after failed refreshes: 1 s, 2 s, 4 s ... up to 64 s, and at most a quarter of
/// the refresh window, so that a short-lived token (a 2 s token has a 0.5 s window) still
/// gets a few background retries before callers have to wait for one. A longer
/// `Retry-After` from the provider wins.
fn backoff(failures: u32, window: Option<Duration>) -> Duration {
    let backoff = Duration::from_secs(1 << failures.saturating_sub(1).min(6));
    window.map_or(backoff, |w| backoff.min(w / 4))
}

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
                rotation: tokio::sync::Mutex::new(()),
                metrics: CacheMetrics::new(),
            }),
        }
    }

    /// A valid token. The read path is one atomic load and one clock read: no lock, no
    /// allocation, no waiting on a refresh in progress. The clock is read on every call, so
    /// the first read after a suspend or a wall-clock step sees where the token stands.
    pub(crate) fn token(&self) -> TokenFuture<'_> {
        match self.read() {
            Some(token) => {
                self.shared.metrics.hit();
                TokenFuture::ready(Ok(token))
            }
            None => {
                self.shared.metrics.miss();
                TokenFuture::new(self.fresh(None))
            }
        }
    }

    /// The cached token if it is valid, starting a background refresh when it is due.
    fn read(&self) -> Option<Arc<Token>> {
        let current = self.shared.current.load();
        let cached = current.as_ref()?;
        let now = self.shared.clock.now();
        match cached.phase(now) {
            Phase::Fresh => Some(cached.token.clone()),
            Phase::RefreshDue => {
                let token = cached.token.clone();
                drop(current);
                self.refresh_in_background(now);
                Some(token)
            }
            Phase::Expired => None,
        }
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
    ///
    /// The save takes the store's refresh lock, like a refresh does: a refresh in another
    /// process that is about to delete a revoked login then sees this new one, and keeps it.
    pub(crate) async fn seed(&self, token: Token) -> Result<Arc<Token>, Error> {
        if let Some(p) = &self.shared.persist {
            let _lock = p.store.lock(&p.key).await?;
            p.store.save(&p.key, &token).await?;
        }
        let token = Arc::new(token);
        self.shared.install(token.clone());
        self.shared.lock().end_backoff();
        Ok(token)
    }

    /// Installs a token read from the store, which needs no saving.
    pub(crate) fn install_loaded(&self, token: Token) {
        self.shared.install(Arc::new(token));
    }

    /// Forgets the cached token (not the stored one).
    pub(crate) fn clear(&self) {
        self.shared.uninstall();
        self.shared.lock().unsaved = None;
    }

    pub(crate) fn persist(&self) -> Option<&Persist> {
        self.shared.persist.as_ref()
    }

    /// Spends this login's refresh token on another token request (`grant`: a token for
    /// another resource or scope set, RFC 8707 §2.2) and returns that token, without a
    /// refresh token: the refresh token stays the login's.
    ///
    /// It runs as the cache's own refreshes do, under the same rotation lock (and the store's
    /// lock, re-reading the newest login), so that every use reads the refresh token the
    /// previous one left; a rotated refresh token is kept in the login, saved to the store
    /// first, before the new token is handed out (a failed save keeps it as the unsaved login
    /// and is an error); a revoked grant ends the login. Not single-flight itself: the
    /// caller's own cache is.
    pub(crate) async fn refresh_for(&self, grant: &dyn Grant) -> Result<Token, Error> {
        self.shared.refresh_for(grant).await
    }

    fn refresh_in_background(&self, now: SystemTime) {
        // Readers must never block: if someone holds the lock, they are refreshing already.
        let Ok(mut state) = self.shared.state.try_lock() else {
            return;
        };
        if state.flight.is_some() || state.not_before.is_some_and(|t| now < t) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tracing::debug!("token enters its refresh window; refreshing in the background");
        let _ = self.shared.start_flight(&mut state, true);
    }

    /// The slow path: the caller waits, in a `token_wait` span, for the token request in
    /// flight or one it starts.
    async fn fresh(&self, rejected: Option<&AccessToken>) -> Result<Arc<Token>, Error> {
        let (mut rx, span) = {
            let mut state = self.shared.lock();
            let mut reason = "missing";
            if let Some(cached) = &*self.shared.current.load() {
                let was_rejected = rejected.is_some_and(|r| r == cached.token.access_token());
                let now = self.shared.clock.now();
                if !was_rejected && cached.valid_until.is_none_or(|until| now < until) {
                    return Ok(cached.token.clone());
                }
                reason = if was_rejected { "rejected" } else { "expired" };
            }
            match &state.flight {
                Some(rx) => (rx.clone(), telemetry::token_wait_span(reason, "joined")),
                None => {
                    let now = self.shared.clock.now();
                    if state.not_before.is_some_and(|t| now < t)
                        && let Some(e) = &state.last_error
                    {
                        // The provider failed moments ago: do not ask again before the backoff.
                        return Err(e.clone());
                    }
                    if tokio::runtime::Handle::try_current().is_err() {
                        return Err(Error::config("authed needs a Tokio runtime"));
                    }
                    let span = telemetry::token_wait_span(reason, "started");
                    // The token request runs in this caller's span.
                    let rx = span.in_scope(|| self.shared.start_flight(&mut state, false));
                    (rx, span)
                }
            }
        };
        let started = tokio::time::Instant::now();
        let wait = async {
            match rx.wait_for(Option::is_some).await {
                // `wait_for` returns once the outcome is `Some`.
                Ok(outcome) => match outcome.as_ref() {
                    Some(outcome) => outcome.clone(),
                    None => Err(Error::config(
                        "the token refresh task ended without a result",
                    )),
                },
                Err(_) => Err(Error::config(
                    "the token refresh task ended without a result",
                )),
            }
        };
        let result = wait.instrument(span.clone()).await;
        telemetry::token_wait_done(&span, &result, started.elapsed());
        result
    }
}

impl State {
    fn end_backoff(&mut self) {
        self.failures = 0;
        self.not_before = None;
        self.last_error = None;
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

    fn uninstall(&self) {
        self.current.store(None);
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
        let flight = async move {
            let result = shared.refresh().await;
            if background {
                telemetry::background_refresh(&result);
            }
            {
                let mut state = shared.lock();
                state.flight = None;
                match &result {
                    Ok(_) => state.end_backoff(),
                    // A store failure costs the provider nothing, and a token kept unsaved
                    // must be saved as soon as the store works again: no backoff.
                    Err(Error::Store(_) | Error::LockTimeout { .. }) => {}
                    Err(e) => {
                        state.failures += 1;
                        let window = shared
                            .current
                            .load()
                            .as_ref()
                            .and_then(|c| c.refresh_window());
                        let wait = backoff(state.failures, window)
                            .max(e.retry_after().unwrap_or_default());
                        state.not_before = Some(shared.clock.now() + wait);
                        state.last_error = Some(e.clone());
                        if background {
                            tracing::warn!(
                                error = %e,
                                retry_in_ms = wait.as_millis() as u64,
                                "background token refresh failed; still using the current token"
                            );
                        } else {
                            tracing::warn!(
                                error = %e,
                                retry_in_ms = wait.as_millis() as u64,
                                "token refresh failed; callers get this error until the backoff ends"
                            );
                        }
                    }
                }
            }
            let _ = tx.send(Some(result));
        };
        // In the span of whoever started it: the caller that waits for it, or the request
        // whose read found the token due for a refresh.
        tokio::spawn(flight.in_current_span());
        rx
    }

    /// One refresh: under the rotation lock, and with a store under its lock too, re-reading
    /// what another process may have saved; then the grant; then save before install.
    async fn refresh(&self) -> Result<Arc<Token>, Error> {
        let _rotation = self.rotation.lock().await;
        let base = self.current.load().as_ref().map(|c| c.token.clone());
        let Some(persist) = &self.persist else {
            return self.fetch(base).await;
        };
        let _lock = persist.store.lock(&persist.key).await?;
        let (base, stored) = self.newest(persist, base).await?;
        if let Some(b) = &base {
            let unchanged = self
                .current
                .load()
                .as_ref()
                .is_some_and(|c| c.token.access_token() == b.access_token());
            if !unchanged && b.is_valid_at(self.clock.now(), &self.policy) {
                // Another process (or an earlier run) saved a newer token: its refresh token
                // is the live one, and the token itself is still good.
                tracing::debug!("using the token another process saved");
                self.install(b.clone());
                return Ok(b.clone());
            }
            if stored {
                // The same access token with a newer refresh token: another process spent
                // the old one for another resource. Refresh with the newer one.
                self.install(b.clone());
            }
        }
        self.fetch(base).await
    }

    /// Under the store's lock: the newest copy of the login. The token a failed save left is
    /// saved first (unless the store meanwhile got a newer login); then what the store holds
    /// wins over `base` when another process saved a newer token (`true` with it).
    async fn newest(
        &self,
        persist: &Persist,
        mut base: Option<Arc<Token>>,
    ) -> Result<(Option<Arc<Token>>, bool), Error> {
        let unsaved = self.lock().unsaved.take();
        if let Some(unsaved) = unsaved {
            let stored = persist.store.load(&persist.key).await;
            let newer_saved = matches!(
                &stored,
                Ok(Some(stored)) if stored.refresh_token() != unsaved.spent.as_ref()
            );
            if newer_saved {
                // A fenced-out save, or another process refreshed from the old refresh token
                // after all: the store's login is newer than ours, and overwriting it could
                // destroy the only live refresh token. Adopt it below instead.
                tracing::warn!(
                    "another process saved a newer login; dropping the token this one could not save"
                );
            } else {
                if let Err(e) = persist.store.save(&persist.key, &unsaved.token).await {
                    self.lock().unsaved = Some(unsaved);
                    return Err(e);
                }
                base = Some(Arc::new(unsaved.token));
            }
        }
        if let Some(stored) = persist.store.load(&persist.key).await? {
            let is_other = base.as_ref().is_none_or(|b| {
                b.access_token() != stored.access_token()
                    || b.refresh_token() != stored.refresh_token()
            });
            if is_other {
                return Ok((Some(Arc::new(stored)), true));
            }
        }
        Ok((base, false))
    }

    /// See [`TokenCache::refresh_for`].
    async fn refresh_for(&self, grant: &dyn Grant) -> Result<Token, Error> {
        let _rotation = self.rotation.lock().await;
        let mut login = self.current.load().as_ref().map(|c| c.token.clone());
        let _lock = match &self.persist {
            Some(persist) => {
                let lock = persist.store.lock(&persist.key).await?;
                let (newest, stored) = self.newest(persist, login).await?;
                if stored && let Some(newest) = &newest {
                    self.install(newest.clone());
                }
                login = newest;
                Some(lock)
            }
            None => None,
        };
        let now = self.clock.now();
        match grant.fetch(login.as_deref(), now).await {
            Ok(mut token) => {
                if let (Some(login), Some(rotated)) = (&login, token.take_refresh_token()) {
                    let record = Token::clone(login).with_refresh_token(Some(rotated));
                    self.keep(record, login.refresh_token().cloned()).await?;
                }
                Ok(token)
            }
            Err(e) if ends_login(&e, login.as_deref()) => {
                self.forget_revoked(login.as_deref()).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self, base: Option<Arc<Token>>) -> Result<Arc<Token>, Error> {
        let now = self.clock.now();
        match self.grant.fetch(base.as_deref(), now).await {
            Ok(mut token) => {
                if let Some(b) = &base {
                    token.keep_refresh_token_from(b);
                }
                let spent = base.as_ref().and_then(|b| b.refresh_token()).cloned();
                self.keep(token, spent).await
            }
            Err(e) if ends_login(&e, base.as_deref()) => {
                self.forget_revoked(base.as_deref()).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Saves `token` (when the cache persists) and installs it: a new login state is never
    /// handed out before it is saved. When the save fails, the token is kept as unsaved (its
    /// refresh token may be the only live one; `spent` is the one it replaced) and saved
    /// before anything else happens; the caller gets the store's error.
    async fn keep(&self, token: Token, spent: Option<RefreshToken>) -> Result<Arc<Token>, Error> {
        if let Some(p) = &self.persist
            && let Err(e) = p.store.save(&p.key, &token).await
        {
            tracing::warn!(error = %e, "could not save the new token; it is kept in memory and saved before the next use");
            self.lock().unsaved = Some(Unsaved { token, spent });
            return Err(e);
        }
        tracing::debug!(token_type = token.token_type(), "new token");
        let token = Arc::new(token);
        self.install(token.clone());
        Ok(token)
    }

    /// Revoked means stop (and so does a refresh token whose fate is unknown, see
    /// [`ends_login`]): forget the login so nothing keeps presenting it. In the store,
    /// only if it still holds the refresh token the provider rejected (we hold the refresh
    /// lock): a login saved meanwhile by a new sign-in or another process must survive.
    async fn forget_revoked(&self, rejected: Option<&Token>) {
        self.uninstall();
        self.lock().unsaved = None;
        let rejected = rejected.and_then(Token::refresh_token);
        if let (Some(p), Some(rejected)) = (&self.persist, rejected) {
            match p.store.delete_if_refresh_token(&p.key, rejected).await {
                Ok(true) => tracing::debug!("removed the revoked login from the store"),
                Ok(false) => tracing::debug!("the store holds a newer login; kept it"),
                Err(delete) => {
                    tracing::warn!(error = %delete, "could not delete the revoked login from the store")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ManualClock;
    use crate::token::AccessToken;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::task::{Context, Poll, Waker};

    /// Issues one-hour tokens named by a counter.
    #[derive(Debug, Default)]
    struct CountingGrant(Arc<AtomicU32>);

    impl Grant for CountingGrant {
        fn fetch<'a>(
            &'a self,
            _current: Option<&'a Token>,
            now: SystemTime,
        ) -> BoxFuture<'a, Result<Token, Error>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                Ok(Token::new(AccessToken::new(format!("t{n}")))
                    .with_lifetime(now, Duration::from_secs(3600)))
            })
        }
    }

    fn ready(cache: &TokenCache) -> String {
        let mut fut = cache.token();
        match std::pin::Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(t)) => t.access_token().secret().to_owned(),
            other => panic!("not ready: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    async fn settle(fetches: &AtomicU32, want: u32, cache: &TokenCache) {
        for _ in 0..1000 {
            if fetches.load(Ordering::SeqCst) == want && cache.shared.lock().flight.is_none() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("expected {want} fetches");
    }

    /// Issue 9 item 13: after a suspend or a wall-clock step forward, the very first read
    /// sees where the token stands.
    #[tokio::test(start_paused = true)]
    async fn the_first_read_after_a_clock_jump_sees_it() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30));
        let fetches = Arc::new(AtomicU32::new(0));
        let cache = TokenCache::new(
            CountingGrant(fetches.clone()),
            ExpiryPolicy::default(),
            clock.clone(),
            None,
        );
        assert_eq!(cache.token().await.unwrap().access_token().secret(), "t1");

        // Into the refresh window (3240 s after issue): the first read still gets the valid
        // token and starts the background refresh.
        clock.advance(Duration::from_secs(3300));
        assert_eq!(ready(&cache), "t1");
        assert!(
            cache.shared.lock().flight.is_some(),
            "the first read refreshes"
        );
        settle(&fetches, 2, &cache).await;
        assert_eq!(ready(&cache), "t2");

        // Past the expiry: the first read does not get the stale token, it waits for a new one.
        clock.advance(Duration::from_secs(3600));
        let mut first = cache.token();
        let poll = std::pin::Pin::new(&mut first).poll(&mut Context::from_waker(Waker::noop()));
        assert!(poll.is_pending(), "the stale token was handed out");
        assert_eq!(first.await.unwrap().access_token().secret(), "t3");
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_read_in_the_refresh_window_refreshes_in_the_background() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30));
        let fetches = Arc::new(AtomicU32::new(0));
        let cache = TokenCache::new(
            CountingGrant(fetches.clone()),
            ExpiryPolicy::default(),
            clock.clone(),
            None,
        );
        cache.token().await.unwrap();
        clock.advance(Duration::from_secs(3240));
        assert_eq!(ready(&cache), "t1");
        settle(&fetches, 2, &cache).await;
        assert_eq!(ready(&cache), "t2");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1, None), Duration::from_secs(1));
        assert_eq!(backoff(2, None), Duration::from_secs(2));
        assert_eq!(backoff(4, None), Duration::from_secs(8));
        assert_eq!(backoff(50, None), Duration::from_secs(64));
        // A one-hour token has a 5-minute window: the cap of 64 s applies.
        let hour_window = Some(Duration::from_secs(300));
        assert_eq!(backoff(50, hour_window), Duration::from_secs(64));
        // A 2 s token has a 0.5 s window: retries every 125 ms.
        let short_window = Some(Duration::from_millis(500));
        assert_eq!(backoff(1, short_window), Duration::from_millis(125));
    }
}

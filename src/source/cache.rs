//! The token cache every grant shares: expiry margin, single-flight refresh, refresh ahead of
//! expiry in the background, a lock-free read of a valid token, and persistence of rotated
//! tokens before they are handed out.
//!
//! A token request belongs to the cache, not to the caller that started it: it runs as a task
//! of its own, callers wait for it at most their `timeout`, and a caller that leaves neither
//! cancels it nor causes a new request. How a refresh that spends a refresh token keeps the
//! store's records (the lock, the in-flight record, identity, tombstones) is in `rotation`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::clock::Clock;
use crate::error::Error;
use crate::retry::Flight;
use crate::source::TokenFuture;
use crate::store::MemoryStore;
use crate::telemetry::{self, CacheMetrics};
use crate::token::{AccessToken, Token};

mod expiry;
mod grant;
mod rotation;

use expiry::{Deadlines, Latency, Phase};

pub(crate) use grant::{Grant, Persist, Settings};
pub(crate) use rotation::signed_out;
use rotation::{Ask, Records};

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
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// The store the user configured, if any.
    persist: Option<Persist>,
    /// A login's records, for a grant that spends refresh tokens: in the configured store,
    /// or for a login without one in a store in this cache's memory, so that one set of
    /// rules covers both.
    records: Option<Records>,
    /// Hit and miss counters (feature `metrics`; empty without it).
    metrics: CacheMetrics,
    /// How long requests with this cache's tokens recently took (reported by the request
    /// rules): a token that would expire in flight counts as expiring.
    latency: Latency,
}

/// A token with its deadlines worked out once, so the read path only compares times.
#[derive(Debug)]
struct Cached {
    token: Arc<Token>,
    /// `None` for a token that never expires.
    deadlines: Option<Deadlines>,
}

type Outcome = Option<Result<Arc<Token>, Error>>;

/// The token request in flight.
#[derive(Debug)]
struct InFlight {
    rx: watch::Receiver<Outcome>,
    /// Callers waiting for it: a flight sends a retry only while there is one.
    waiting: Arc<AtomicUsize>,
}

/// Everything behind the slow path. Only held briefly, never across an `.await`.
#[derive(Debug, Default)]
struct State {
    /// The token request in flight; every caller that needs a token waits on this one.
    flight: Option<InFlight>,
    /// After a failed refresh, none starts again before this: not in the background, and
    /// not for callers without a valid token, who get `last_error` at once instead. So the
    /// number of token requests follows the backoff schedule, not the number of callers.
    not_before: Option<SystemTime>,
    /// Failed refreshes in a row.
    failures: u32,
    /// The error of the last failed refresh, while `not_before` holds.
    last_error: Option<Error>,
    /// The login ended (revoked, replaced, lost, signed out): every caller gets this, and no
    /// request is sent, until a new sign-in is installed.
    ended: Option<Error>,
}

/// Backoff after failed refreshes: 1 s, 2 s, 4 s ... up to 64 s, and at most a quarter of
/// the refresh window, so that a short-lived token (a 2 s token has a 0.5 s window) still
/// gets a few background retries before callers have to wait for one. A longer
/// `Retry-After` from the provider wins.
fn backoff(failures: u32, window: Option<Duration>) -> Duration {
    let backoff = Duration::from_secs(1 << failures.saturating_sub(1).min(6));
    window.map_or(backoff, |w| backoff.min(w / 4))
}

/// Counts a caller while it waits for a flight.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn enter(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TokenCache {
    pub(crate) fn new(
        grant: impl Grant,
        settings: Settings,
        clock: Arc<dyn Clock>,
        persist: Option<Persist>,
    ) -> Self {
        let records = match (&persist, grant.spends_refresh_token()) {
            (Some(p), true) => Some(Records::new(p.clone())),
            (None, true) => Some(Records::new(Persist {
                store: Arc::new(MemoryStore::new()),
                key: "login".to_owned(),
            })),
            (_, false) => None,
        };
        TokenCache {
            shared: Arc::new(Shared {
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                grant: Box::new(grant),
                settings,
                clock,
                persist,
                records,
                metrics: CacheMetrics::new(),
                latency: Latency::default(),
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
            None => TokenFuture::new(self.fresh(None)),
        }
    }

    /// The cached token if it is valid, starting a background refresh when it is due.
    fn read(&self) -> Option<Arc<Token>> {
        let current = self.shared.current.load();
        let cached = current.as_ref()?;
        let now = self.shared.clock.now();
        let phase = match &cached.deadlines {
            Some(deadlines) if deadlines.is_quiet(now) => Phase::Fresh,
            Some(deadlines) => {
                // From here on the latency counts: time the requests sent with it.
                cached.token.set_timed(true);
                deadlines.phase(now, &self.shared.latency)
            }
            None => Phase::Fresh,
        };
        match phase {
            Phase::Fresh => Some(cached.token.clone()),
            Phase::RefreshDue => {
                let token = cached.token.clone();
                drop(current);
                self.refresh_in_background(now);
                Some(token)
            }
            Phase::Expiring => None,
        }
    }

    /// A token other than `rejected`, refreshing once however many callers report it.
    pub(crate) fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        TokenFuture::new(self.fresh(Some(rejected.access_token())))
    }

    /// Records that a request sent with one of this cache's tokens took `took`, from taking
    /// the token to the answer (see `expiry`).
    pub(crate) fn request_latency(&self, took: Duration) {
        self.shared.latency.observe(took, self.shared.clock.now());
    }

    /// The cached token, valid or not.
    pub(crate) fn peek(&self) -> Option<Arc<Token>> {
        self.shared.current.load().as_ref().map(|c| c.token.clone())
    }

    /// Installs a token obtained outside the cache (a sign-in), saving it first when the
    /// cache persists. For a grant that spends refresh tokens, the token becomes a new login
    /// (see `Records::seed`).
    ///
    /// The save takes the store's refresh lock, like a refresh does: a refresh in another
    /// process that is about to delete a revoked login then sees this new one, and keeps it.
    pub(crate) async fn seed(&self, token: Token) -> Result<Arc<Token>, Error> {
        let token = if let Some(records) = &self.shared.records {
            records.seed(token).await?
        } else {
            if let Some(p) = &self.shared.persist {
                let _lock = p.store.lock(&p.key).await?;
                p.store.save(&p.key, &token).await?;
            }
            token
        };
        let token = Arc::new(token);
        self.shared.install(token.clone());
        let mut state = self.shared.lock();
        state.end_backoff();
        state.ended = None;
        Ok(token)
    }

    /// Installs a token read from the store, which needs no saving.
    pub(crate) fn install_loaded(&self, token: Token) {
        self.shared.install(Arc::new(token));
    }

    /// Forgets the login here after a sign-out: callers get a re-authorize error, and nothing
    /// is sent, until a new sign-in. Not the stored one: the caller handles the store.
    pub(crate) fn sign_out(&self) {
        self.shared.end(signed_out());
    }

    /// Whether `token` belongs to this cache's login (or either's identity is unknown).
    pub(crate) fn owns(&self, token: &Token) -> bool {
        self.shared.records.as_ref().is_none_or(|r| r.owns(token))
    }

    /// Removes the signed-out login `stored` from the store, with the lock held, leaving a
    /// tombstone that says it was signed out.
    pub(crate) async fn bury_signed_out(&self, stored: &Token) -> Result<(), Error> {
        match &self.shared.records {
            Some(records) => records.bury_signed_out(stored).await,
            None => Ok(()),
        }
    }

    pub(crate) fn persist(&self) -> Option<&Persist> {
        self.shared.persist.as_ref()
    }

    /// Spends this login's refresh token on another token request (`grant`: a token for
    /// another resource or scope set, RFC 8707 §2.2) and returns that token, without a
    /// refresh token: the refresh token stays the login's.
    ///
    /// It runs as the cache's own refreshes do (see `rotation`): under the store's lock,
    /// re-reading the newest login, with an in-flight record, so that every use, in this
    /// process or another, reads the refresh token the previous one left; a rotated refresh
    /// token is kept in the login, saved to the store first, before the new token is handed
    /// out (a failed save keeps it as the unsaved login and is an error); a lost answer
    /// follows [`LostRefresh`](crate::LostRefresh); a revoked grant ends the login. Not
    /// single-flight itself: the caller's own cache is.
    pub(crate) async fn refresh_for(
        &self,
        grant: &dyn Grant,
        flight: &Flight,
    ) -> Result<Token, Error> {
        self.shared.refresh_for(grant, flight).await
    }

    /// Forgets the token here (a logout of the login a target's cache serves): the next
    /// caller asks the grant again.
    pub(crate) fn clear(&self) {
        self.shared.uninstall();
        if let Some(records) = &self.shared.records {
            records.drop_unsaved();
        }
    }

    fn refresh_in_background(&self, now: SystemTime) {
        // Readers must never block: if someone holds the lock, they are refreshing already.
        let Ok(mut state) = self.shared.state.try_lock() else {
            return;
        };
        if state.flight.is_some()
            || state.ended.is_some()
            || state.not_before.is_some_and(|t| now < t)
        {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tracing::debug!("token enters its refresh window; refreshing in the background");
        let _ = self.shared.start_flight(&mut state, true);
    }

    /// The slow path: the caller waits, in a `token_wait` span, for the token request in
    /// flight or one it starts, at most the configuration's timeout. The request is not
    /// cancelled when the caller gives up: the cache keeps its answer.
    async fn fresh(&self, rejected: Option<&AccessToken>) -> Result<Arc<Token>, Error> {
        if rejected.is_none() {
            // Counted here, when the caller waits, not when `token()` is called: a front door
            // that finds no token at hand drops that future and awaits the next one.
            self.shared.metrics.miss();
        }
        let (mut rx, waiting, span) = {
            let mut state = self.shared.lock();
            if let Some(e) = &state.ended {
                return Err(e.clone());
            }
            let mut reason = "missing";
            if let Some(cached) = &*self.shared.current.load() {
                let was_rejected = rejected.is_some_and(|r| r == cached.token.access_token());
                let now = self.shared.clock.now();
                let valid = cached
                    .deadlines
                    .is_none_or(|d| now < d.valid_until(now, &self.shared.latency));
                if !was_rejected && valid {
                    return Ok(cached.token.clone());
                }
                reason = if was_rejected { "rejected" } else { "expired" };
            }
            match &state.flight {
                Some(flight) => (
                    flight.rx.clone(),
                    flight.waiting.clone(),
                    telemetry::token_wait_span(reason, "joined"),
                ),
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
                    let (rx, waiting) =
                        span.in_scope(|| self.shared.start_flight(&mut state, false));
                    (rx, waiting, span)
                }
            }
        };
        let _waiting = Waiting::enter(waiting);
        let started = tokio::time::Instant::now();
        let timeout = self.shared.settings.timeout;
        let wait = async {
            let outcome = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
            match outcome {
                Ok(Ok(outcome)) => outcome.clone().unwrap_or_else(|| {
                    Err(Error::config(
                        "the token refresh task ended without a result",
                    ))
                }),
                Ok(Err(_)) => Err(Error::config(
                    "the token refresh task ended without a result",
                )),
                Err(_) => Err(Error::Timeout { waited: timeout }),
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
        if let Some(records) = &self.records {
            records.note(&token);
        }
        let now = self.clock.now();
        let deadlines = Deadlines::of(&token, &self.settings.policy, now);
        // A token that never expires, or that no latency could make expiring yet, is not
        // timed (see `read`).
        token.set_timed(deadlines.is_some_and(|d| !d.is_quiet(now)));
        self.current
            .store(Some(Arc::new(Cached { token, deadlines })));
    }

    fn uninstall(&self) {
        self.current.store(None);
    }

    /// Ends the login: no token is handed out and no request sent until a new sign-in.
    fn end(&self, e: Error) -> Error {
        self.uninstall();
        if let Some(records) = &self.records {
            records.drop_unsaved();
        }
        self.lock().ended = Some(e.clone());
        e
    }

    /// Starts the one token request. It runs as its own task so that a caller that gives up
    /// waiting cannot cancel it halfway, between a provider rotating the refresh token and
    /// the store saving it.
    fn start_flight(
        self: &Arc<Self>,
        state: &mut State,
        background: bool,
    ) -> (watch::Receiver<Outcome>, Arc<AtomicUsize>) {
        let (tx, rx) = watch::channel(None);
        let waiting = Arc::new(AtomicUsize::new(0));
        state.flight = Some(InFlight {
            rx: rx.clone(),
            waiting: waiting.clone(),
        });
        let shared = self.clone();
        let flight = Flight::for_callers(waiting.clone());
        let task = async move {
            let result = shared.refresh(&flight).await;
            if background {
                telemetry::background_refresh(&result);
            }
            let retry_unsaved = shared.settle(&result, background);
            let _ = tx.send(Some(result));
            if retry_unsaved {
                shared.retry_unsaved_later();
            }
        };
        // In the span of whoever started it: the caller that waits for it, or the request
        // whose read found the token due for a refresh.
        tokio::spawn(task.in_current_span());
        (rx, waiting)
    }

    /// Records a flight's result: the backoff after a failure, the end of the login. Says
    /// whether a token is waiting to be saved.
    fn settle(&self, result: &Result<Arc<Token>, Error>, background: bool) -> bool {
        let mut state = self.lock();
        state.flight = None;
        match result {
            Ok(_) => state.end_backoff(),
            Err(e) if self.records.is_some() && e.requires_reauthorization() => {
                // The refresh uninstalled the token already (`end`).
                state.ended = Some(e.clone());
            }
            // A store failure costs the provider nothing, and a caller's timeout is not the
            // provider's failure: no backoff.
            Err(Error::Store(_) | Error::LockTimeout { .. } | Error::Timeout { .. }) => {}
            Err(e) => {
                state.failures += 1;
                let window = self
                    .current
                    .load()
                    .as_ref()
                    .and_then(|c| c.deadlines)
                    .map(|d| d.refresh_window());
                let wait = backoff(state.failures, window).max(e.retry_after().unwrap_or_default());
                state.not_before = Some(self.clock.now() + wait);
                state.last_error = Some(e.clone());
                let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                if background {
                    tracing::warn!(error = %e, retry_in_ms, "background token refresh failed; still using the current token");
                } else {
                    tracing::warn!(error = %e, retry_in_ms, "token refresh failed; callers get this error until the backoff ends");
                }
            }
        }
        drop(state);
        self.records.as_ref().is_some_and(Records::has_unsaved)
    }

    /// A rotated refresh token that could not be saved may be the only live one: it is
    /// saved again soon, whether or not anyone asks for a token, at 0.25 s, 0.5 s, 1 s ...
    /// up to 8 s apart, until it is saved or the store holds a newer login.
    fn retry_unsaved_later(self: &Arc<Self>) {
        let shared = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(250);
            loop {
                tokio::time::sleep(pause).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let started = {
                    let mut state = shared.lock();
                    let unsaved = shared.records.as_ref().is_some_and(Records::has_unsaved);
                    if !unsaved || state.ended.is_some() {
                        return;
                    }
                    if state.flight.is_none() {
                        let _ = shared.start_flight(&mut state, true);
                        true
                    } else {
                        false
                    }
                };
                if started {
                    // The flight saves it, or schedules the next try itself.
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(8));
            }
        });
    }

    /// One refresh. A grant that spends refresh tokens keeps its login's records in the
    /// store (see `rotation`); others re-read a shared store under its lock.
    async fn refresh(self: &Arc<Self>, flight: &Flight) -> Result<Arc<Token>, Error> {
        if let Some(records) = &self.records {
            let ask = Ask {
                grant: self.grant.as_ref(),
                settings: self.settings,
                clock: self.clock.as_ref(),
                current: self.current.load().as_ref().map(|c| c.token.clone()),
                flight,
                other: false,
            };
            return match records.refresh(&ask).await {
                Ok(served) => {
                    self.install(served.login.clone());
                    Ok(served.login)
                }
                Err(e) => Err(self.ended_by(e)),
            };
        }
        let base = self.current.load().as_ref().map(|c| c.token.clone());
        let Some(persist) = &self.persist else {
            let token = Arc::new(self.fetch(base, flight).await?);
            self.install(token.clone());
            return Ok(token);
        };
        let _lock = persist.store.lock(&persist.key).await?;
        if let Some(stored) = persist.store.load(&persist.key).await? {
            let is_other = base
                .as_ref()
                .is_none_or(|b| b.access_token() != stored.access_token());
            if is_other && stored.is_valid_at(self.clock.now(), &self.settings.policy) {
                // Another process (or an earlier run) saved a newer token.
                tracing::debug!("using the token another process saved");
                let stored = Arc::new(stored);
                self.install(stored.clone());
                return Ok(stored);
            }
        }
        let token = self.fetch(base, flight).await?;
        persist.store.save(&persist.key, &token).await?;
        let token = Arc::new(token);
        self.install(token.clone());
        Ok(token)
    }

    /// See [`TokenCache::refresh_for`].
    async fn refresh_for(&self, grant: &dyn Grant, flight: &Flight) -> Result<Token, Error> {
        if let Some(e) = &self.lock().ended {
            return Err(e.clone());
        }
        let Some(records) = &self.records else {
            return Err(Error::config(
                "only a login that spends refresh tokens serves other resources",
            ));
        };
        let ask = Ask {
            grant,
            settings: self.settings,
            clock: self.clock.as_ref(),
            current: self.current.load().as_ref().map(|c| c.token.clone()),
            flight,
            other: true,
        };
        match records.refresh(&ask).await {
            Ok(served) => {
                self.install(served.login);
                served.other.ok_or_else(|| {
                    Error::config("the refresh for another resource returned no token")
                })
            }
            Err(e) => Err(self.ended_by(e)),
        }
    }

    /// `e`, after ending the login when `e` ends it (see `rotation::ends_login`).
    fn ended_by(&self, e: Error) -> Error {
        if let Some(end) = rotation::ends_login(&e) {
            self.end(end);
        }
        e
    }

    /// The grant's request, for a grant that spends nothing.
    async fn fetch(&self, base: Option<Arc<Token>>, flight: &Flight) -> Result<Token, Error> {
        let now = self.clock.now();
        let token = self.grant.fetch(base.as_deref(), now, flight).await?;
        tracing::debug!(token_type = token.token_type(), "new token");
        Ok(token)
    }
}

#[cfg(test)]
mod tests;

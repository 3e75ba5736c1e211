//! The token cache every grant shares: expiry margin, single-flight refresh, refresh ahead of
//! expiry in the background, a lock-free read of a valid token, and persistence of rotated
//! tokens before they are handed out.

use std::num::NonZero;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tokio::task::AbortHandle;

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
    /// The token, for everything but the fast read path.
    current: ArcSwapOption<Cached>,
    /// The same token again, once per shard, for the fast read path (see [`Shard`]).
    shards: Box<[Shard]>,
    /// Serialises writers of `current` and `shards`, so that they always agree.
    publish: Mutex<()>,
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
    /// `true` while the token is certainly before its refresh time: readers then skip the
    /// clock, which costs several times more than the rest of the read. Only ever `true` with
    /// the system clock: a timer sets it to `false` shortly before `refresh_at`.
    quiet: Arc<AtomicBool>,
    /// That timer. It is aborted when the token is dropped, so nothing outlives the cache.
    timer: Option<AbortHandle>,
}

impl Drop for Cached {
    fn drop(&mut self) {
        if let Some(timer) = &self.timer {
            timer.abort();
        }
    }
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

/// The quiet flag is cleared this long before the refresh time, so that a timer firing a
/// little late never hides the refresh time from readers.
const TIMER_SLACK: Duration = Duration::from_millis(50);

/// Even while the quiet flag is set, every this-many-th read on a shard checks the clock: a
/// timer runs late after the machine was suspended or the wall clock was stepped forward.
const CLOCK_SAMPLE: u32 = 64;

/// One reader shard: a lock and a copy of the current token (its own allocation) that
/// mostly one thread uses. A read takes the shard's lock and clones the shard's `Arc`, so
/// threads on different shards write to no common cache line: reads scale with threads
/// instead of contending on one reference count or lock word, and a refresh never holds a
/// shard's lock for longer than it takes to swap a pointer.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Option<Local>>);

#[derive(Debug)]
struct Local {
    token: Arc<Token>,
    cached: Arc<Cached>,
    reads: u32,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Option<Local>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A small number per thread, given out in order, that picks the thread's shard.
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.try_with(|i| *i).unwrap_or(0)
}

/// Shards per cache: a power of two, four per core so that threads rarely share one.
fn shard_count() -> usize {
    std::thread::available_parallelism()
        .map_or(4, NonZero::get)
        .saturating_mul(4)
        .next_power_of_two()
        .min(64)
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
    /// only valid one left, so it is kept and saved before anything else happens.
    unsaved: Option<Token>,
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
                shards: (0..shard_count()).map(|_| Shard::default()).collect(),
                publish: Mutex::new(()),
                state: Mutex::new(State::default()),
                grant: Box::new(grant),
                policy,
                clock,
                persist,
            }),
        }
    }

    /// A valid token. The fast path takes this thread's shard lock, which nobody else holds,
    /// reads a flag and clones an `Arc`: no shared lock, no allocation, no clock read while
    /// the token is far from its refresh time, no waiting on a refresh in progress.
    pub(crate) fn token(&self) -> TokenFuture<'_> {
        match self.read() {
            Some(token) => TokenFuture::ready(Ok(token)),
            None => TokenFuture::new(self.fresh(None)),
        }
    }

    /// The cached token if it is valid, starting a background refresh when it is due.
    fn read(&self) -> Option<Arc<Token>> {
        let shards = &self.shared.shards;
        let mut guard = shards[thread_index() & (shards.len() - 1)].lock();
        let local = guard.as_mut()?;
        local.reads = local.reads.wrapping_add(1);
        if local.cached.quiet.load(Ordering::Relaxed) && local.reads % CLOCK_SAMPLE != 0 {
            return Some(local.token.clone());
        }
        let now = self.shared.clock.now();
        match local.cached.phase(now) {
            Phase::Fresh => Some(local.token.clone()),
            Phase::RefreshDue => {
                let token = local.token.clone();
                // Not under the shard lock: starting a flight takes another lock.
                drop(guard);
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
        let (quiet, timer) = self.arm(refresh_at);
        let cached = Arc::new(Cached {
            token,
            valid_until,
            refresh_at,
            quiet,
            timer,
        });
        let _publish = self.publish.lock().unwrap_or_else(PoisonError::into_inner);
        self.current.store(Some(cached.clone()));
        for shard in &self.shards {
            *shard.lock() = Some(Local {
                token: Arc::new(Token::clone(&cached.token)),
                cached: cached.clone(),
                reads: 0,
            });
        }
    }

    fn uninstall(&self) {
        let _publish = self.publish.lock().unwrap_or_else(PoisonError::into_inner);
        self.current.store(None);
        for shard in &self.shards {
            *shard.lock() = None;
        }
    }

    /// The quiet flag for a token refreshed from `refresh_at`, and the timer that clears it.
    /// Quiet only with the system clock (a timer cannot follow a clock moved by hand) and
    /// inside a Tokio runtime; otherwise readers read the clock every time.
    /// A token that never expires is always quiet.
    fn arm(&self, refresh_at: Option<SystemTime>) -> (Arc<AtomicBool>, Option<AbortHandle>) {
        let quiet = Arc::new(AtomicBool::new(refresh_at.is_none()));
        let Some(at) = refresh_at else {
            return (quiet, None);
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return (quiet, None);
        };
        if !self.clock.is_system_time() {
            return (quiet, None);
        }
        let left = at
            .duration_since(self.clock.now())
            .unwrap_or_default()
            .saturating_sub(TIMER_SLACK);
        if left.is_zero() {
            return (quiet, None);
        }
        quiet.store(true, Ordering::Relaxed);
        let flag = quiet.clone();
        let timer = runtime.spawn(async move {
            tokio::time::sleep(left).await;
            flag.store(false, Ordering::Relaxed);
        });
        (quiet, Some(timer.abort_handle()))
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
                if let Some(p) = &self.persist
                    && let Err(e) = p.store.save(&p.key, &token).await
                {
                    tracing::warn!(error = %e, "could not save the new token; it is kept in memory and saved before the next use");
                    self.lock().unsaved = Some(token);
                    return Err(e);
                }
                tracing::debug!(token_type = token.token_type(), "new token");
                let token = Arc::new(token);
                self.install(token.clone());
                Ok(token)
            }
            Err(e) if e.is_revoked() => {
                // Revoked means stop: forget the login so nothing keeps presenting it. In the
                // store, only if it still holds the refresh token the provider rejected (we
                // hold the refresh lock): a login saved meanwhile by a new sign-in or another
                // process must survive.
                self.uninstall();
                self.lock().unsaved = None;
                let rejected = base.as_ref().and_then(|b| b.refresh_token());
                if let (Some(p), Some(rejected)) = (&self.persist, rejected) {
                    match p.store.delete_if_refresh_token(&p.key, rejected).await {
                        Ok(true) => tracing::debug!("removed the revoked login from the store"),
                        Ok(false) => tracing::debug!("the store holds a newer login; kept it"),
                        Err(delete) => {
                            tracing::warn!(error = %delete, "could not delete the revoked login from the store")
                        }
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
    use crate::token::AccessToken;
    use std::sync::atomic::AtomicU32;
    use std::task::{Context, Poll, Waker};

    /// A clock moved by hand that claims to be the system clock, so that the cache arms
    /// timers; the tests move it and Tokio's paused time together.
    #[derive(Debug)]
    struct LockstepClock(Mutex<SystemTime>);

    impl Clock for LockstepClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
        fn is_system_time(&self) -> bool {
            true
        }
    }

    impl LockstepClock {
        fn advance_wall_only(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

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

    fn quiet(cache: &TokenCache) -> bool {
        let current = cache.shared.current.load();
        current.as_ref().unwrap().quiet.load(Ordering::SeqCst)
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

    #[tokio::test(start_paused = true)]
    async fn timer_ends_the_quiet_period_and_sampling_catches_a_late_timer() {
        let clock = Arc::new(LockstepClock(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
        )));
        let fetches = Arc::new(AtomicU32::new(0));
        let cache = TokenCache::new(
            CountingGrant(fetches.clone()),
            ExpiryPolicy::default(),
            clock.clone(),
            None,
        );
        assert_eq!(cache.token().await.unwrap().access_token().secret(), "t1");
        // Refresh window: 3600 - 60 - 300 = 3240 s after issue.
        assert!(quiet(&cache));

        // The wall clock jumps into the window but the timer has not fired (a suspended
        // machine): readers skip the clock, until the sampled read notices.
        clock.advance_wall_only(Duration::from_secs(3300));
        let mut reads = 0;
        while cache.shared.lock().flight.is_none() {
            assert_eq!(ready(&cache), "t1");
            reads += 1;
            assert!(reads <= CLOCK_SAMPLE, "no refresh after {reads} reads");
        }
        settle(&fetches, 2, &cache).await;
        assert_eq!(ready(&cache), "t2");

        // Real time: the timer fires 50 ms before the refresh time, and the next read refreshes.
        tokio::time::advance(Duration::from_secs(3240) - TIMER_SLACK * 2).await;
        clock.advance_wall_only(Duration::from_secs(3240) - TIMER_SLACK * 2);
        tokio::task::yield_now().await;
        assert!(quiet(&cache));
        tokio::time::advance(TIMER_SLACK * 2).await;
        clock.advance_wall_only(TIMER_SLACK * 2);
        tokio::task::yield_now().await;
        assert!(!quiet(&cache));
        assert_eq!(ready(&cache), "t2");
        settle(&fetches, 3, &cache).await;
        assert_eq!(ready(&cache), "t3");

        // Dropping the cache aborts the armed timer: no task is left.
        let tasks = tokio::runtime::Handle::current().metrics();
        assert_eq!(tasks.num_alive_tasks(), 1);
        drop(cache);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(tasks.num_alive_tasks(), 0);
    }

    #[tokio::test]
    async fn without_a_system_clock_every_read_checks_the_clock() {
        let clock =
            crate::testing::ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30));
        let fetches = Arc::new(AtomicU32::new(0));
        let cache = TokenCache::new(
            CountingGrant(fetches.clone()),
            ExpiryPolicy::default(),
            clock.clone(),
            None,
        );
        cache.token().await.unwrap();
        assert!(!quiet(&cache));
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

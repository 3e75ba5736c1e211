//! When and how often a request to the provider is sent again: the retry policy, `Retry-After`
//! (RFC 9110 §10.2.3), and the per-endpoint wait that rate limiting imposes on every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::error::Error;

/// How requests to the provider's endpoints are retried after a transient failure: a
/// connection that failed or was reset, a timeout, a 5xx answer, or a 429.
///
/// Only requests that are safe to send twice are retried: client credentials and the device
/// authorization request on every transient failure; a refresh only when the provider surely
/// did not act on it (the connection failed, it answered 429 or 503, or it refused in OAuth's
/// error format), never after a timeout, a connection cut, or a gateway's 502 or 504,
/// because the provider may have rotated the refresh token already and would see the old one
/// again as a replay (RFC 9700 §4.14.2; see [`LostRefresh`](crate::LostRefresh) for what
/// happens next). An
/// authorization code exchange is never retried (a code is single-use, and RFC 6749 §10.5
/// lets a provider revoke every token of a login whose code arrives twice), nor is any other
/// request. Device flow polling has its own schedule (see
/// [`DeviceAuthorization::poll`](crate::DeviceAuthorization::poll)).
///
/// Defaults, and why:
///
/// | Setting | Default | Why |
/// |---|---|---|
/// | [`with_attempts`](Self::with_attempts) | 6 | a cap; the time budget ends the attempts first unless the provider fails fast |
/// | [`with_max_elapsed`](Self::with_max_elapsed) | 10 s | a caller waiting for a token is usually serving a request of its own |
/// | [`with_backoff`](Self::with_backoff) | 1 s, doubling, at most 4 s | the attempts spread over the budget: no gap is longer than 4 s, so a provider that is back within half the budget (5 s, a restarting instance, a failover) is reached; exponential with jitter (each delay is drawn from its upper half), so that clients that failed together do not retry together |
/// | [`with_retry_after_max`](Self::with_retry_after_max) | 5 min | a provider's `Retry-After` is honoured up to this; a hostile or broken value cannot park a client for a day |
///
/// The configuration's [`timeout`](crate::OAuthConfigBuilder::timeout) bounds each call as a
/// whole, retries and their waits included. Retries belong to the call: a token request a
/// cache sends on behalf of callers retries only while one of them still waits (a caller
/// that gave up never causes a new request). Across calls, a cache backs off on its own
/// schedule, shared by all its callers (no thundering herd).
///
/// A `Retry-After` (on a 429, or a 503) closes the endpoint for everyone using the same
/// [`OAuthConfig`](crate::OAuthConfig) until it has passed: requests that would wait longer
/// than their budget fail at once with [`Error::RateLimited`](crate::Error::RateLimited),
/// without reaching the provider.
///
/// ```
/// use std::time::Duration;
/// use authed::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_attempts(5)
///     .with_max_elapsed(Duration::from_secs(20));
/// assert_eq!(policy.attempts(), 5);
/// assert_eq!(RetryPolicy::none().attempts(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    max_elapsed: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            max_elapsed: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            retry_after_max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Sends every request once. `Retry-After` still closes the endpoint.
    pub fn none() -> Self {
        RetryPolicy::default().with_attempts(1)
    }

    /// How many times a request is sent at most, the first included. `0` counts as `1`.
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The time budget of one call, retries and their waits included: no retry starts (and
    /// no rate-limit wait is sat out) that would end after it.
    #[must_use]
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The delay before the first retry, doubling for each further one up to `max`.
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The longest `Retry-After` honoured; longer values are cut to this.
    #[must_use]
    pub fn with_retry_after_max(mut self, max: Duration) -> Self {
        self.retry_after_max = max;
        self
    }

    /// How many times a request is sent at most, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time budget of one call.
    pub fn max_elapsed(&self) -> Duration {
        self.max_elapsed
    }

    /// The delay before the first retry, and the most any retry waits.
    pub fn backoff(&self) -> (Duration, Duration) {
        (self.initial_backoff, self.max_backoff)
    }

    /// The longest `Retry-After` honoured.
    pub fn retry_after_max(&self) -> Duration {
        self.retry_after_max
    }

    /// The delay before retry number `retry` (1-based): exponential, capped, and drawn at
    /// random from its upper half ("equal jitter").
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Caps a delay the provider asked for.
    pub(crate) fn cap(&self, asked: Duration) -> Duration {
        asked.min(self.retry_after_max)
    }
}

/// What a token request sent by a cache may do on behalf of its callers. The request belongs
/// to the cache: callers wait for it at most their timeout and may leave; it then neither
/// stops halfway nor starts anything new for them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flight {
    /// Callers waiting for the request; `None` when its own caller awaits it (a sign-in, a
    /// revocation: dropping that future drops the request).
    waiting: Option<Arc<AtomicUsize>>,
    /// How long a refresh's answer is read: its in-flight bound, longer than the callers'
    /// timeout, so that an answer that comes after they left is still kept.
    pub(crate) answer_bound: Option<Duration>,
    /// A refresh is not sent after this: its in-flight record promised other processes it
    /// would be answered within the bound, and a process stopped since then must not send.
    pub(crate) send_by: Option<Instant>,
}

impl Flight {
    /// A request made for the callers `waiting` counts.
    pub(crate) fn for_callers(waiting: Arc<AtomicUsize>) -> Self {
        Flight {
            waiting: Some(waiting),
            answer_bound: None,
            send_by: None,
        }
    }

    /// This flight's refresh request: its answer read for `bound`, sent not after `send_by`.
    pub(crate) fn refresh(&self, bound: Duration, send_by: Instant) -> Self {
        Flight {
            waiting: self.waiting.clone(),
            answer_bound: Some(bound),
            send_by: Some(send_by),
        }
    }

    /// Whether someone still waits for the answer: a retry is sent only then.
    pub(crate) fn wanted(&self) -> bool {
        self.waiting
            .as_ref()
            .is_none_or(|w| w.load(Ordering::SeqCst) > 0)
    }
}

/// `true` when the provider may have acted on a request that failed: it was sent, and the
/// answer was lost or is not the provider's own. A timeout, a connection cut or reset, a body
/// that broke off or is not a token response (a truncated answer: the provider did act), a
/// gateway's 502, 504 or HTML error page. Known not acted on: a connection that never
/// opened, a request never sent, 429, 503 (nothing took it), and any answer in OAuth's
/// error format (the provider's own refusal).
pub(crate) fn may_have_been_processed(e: &Error) -> bool {
    match e {
        Error::Transport(cause) => !cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect),
        Error::MalformedResponse { status, .. } => !matches!(status, 429 | 503),
        _ => false,
    }
}

/// Reads a `Retry-After` value: a number of seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time", which the cap then cuts.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Endpoints closed by a `Retry-After`, until when, and with which status.
#[derive(Debug, Default)]
pub(crate) struct Gate(Mutex<HashMap<String, (Instant, u16)>>);

impl Gate {
    /// How long `endpoint` stays closed, and the status that closed it.
    pub(crate) fn closed_for(&self, endpoint: &str) -> Option<(Duration, u16)> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let &(until, status) = map.get(endpoint)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            map.remove(endpoint);
            return None;
        }
        Some((left, status))
    }

    /// Closes `endpoint` for `wait`, or longer if it is closed longer already.
    pub(crate) fn close(&self, endpoint: &str, wait: Duration, status: u16) {
        let until = Instant::now() + wait;
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(endpoint.to_owned()).or_insert((until, status));
        if entry.0 < until {
            *entry = (until, status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // The obsolete formats RFC 9110 still requires recipients to read.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:50:07 1994", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-5", "1.5", "soon", "12 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.cap(Duration::from_secs(86_400)),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_caps() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first));
            let second = policy.delay(2);
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&second));
            let late = policy.delay(30);
            assert!((Duration::from_secs(2)..=Duration::from_secs(4)).contains(&late));
        }
        // Jitter: not every draw is the same.
        let draws: std::collections::HashSet<_> = (0..20).map(|_| policy.delay(3)).collect();
        assert!(draws.len() > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_stays_closed_for_the_longest_wait() {
        let gate = Gate::default();
        assert!(gate.closed_for("a").is_none());
        gate.close("a", Duration::from_secs(10), 429);
        gate.close("a", Duration::from_secs(2), 503);
        assert_eq!(gate.closed_for("a"), Some((Duration::from_secs(10), 429)));
        assert!(gate.closed_for("b").is_none());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(gate.closed_for("a").is_none());
    }
}

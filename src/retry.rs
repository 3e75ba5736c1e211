//! When and how often a request to the provider is sent again: the retry policy, `Retry-After`
//! (RFC 9110 §10.2.3), and the per-endpoint wait that rate limiting imposes on every caller.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How requests to the provider's endpoints are retried after a transient failure: a
/// connection that failed or was reset, a timeout, a 5xx answer, or a 429.
///
/// Only requests that are safe to send twice are retried: client credentials and the device
/// authorization request on every transient failure; a refresh only when the provider surely
/// did not act on it (the connection failed, or it answered 5xx or 429), never after a
/// timeout or a connection cut mid-answer, because the provider may have rotated the refresh
/// token already and would see the old one again as a replay (RFC 9700 §4.14.2). An
/// authorization code exchange is never retried (a code is single-use, and RFC 6749 §10.5
/// lets a provider revoke every token of a login whose code arrives twice), nor is any other
/// request. Device flow polling has its own schedule (see
/// [`DeviceAuthorization::poll`](crate::DeviceAuthorization::poll)).
///
/// Defaults, and why:
///
/// | Setting | Default | Why |
/// |---|---|---|
/// | [`with_attempts`](Self::with_attempts) | 3 | rides out a restarting instance or a dropped connection; more only adds load to a provider that is down |
/// | [`with_max_elapsed`](Self::with_max_elapsed) | 10 s | a caller waiting for a token is usually serving a request of its own |
/// | [`with_backoff`](Self::with_backoff) | 250 ms, doubling, at most 2 s | exponential with jitter (each delay is drawn from its upper half), so that clients that failed together do not retry together |
/// | [`with_retry_after_max`](Self::with_retry_after_max) | 5 min | a provider's `Retry-After` is honoured up to this; a hostile or broken value cannot park a client for a day |
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
            attempts: 3,
            max_elapsed: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
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
        half + half.mul_f64(random_unit())
    }

    /// Caps a delay the provider asked for.
    pub(crate) fn cap(&self, asked: Duration) -> Duration {
        asked.min(self.retry_after_max)
    }
}

/// A number in `[0, 1)`. Jitter needs no strong randomness: std's per-process random hash
/// keys, mixed with a counter, spread clients apart without another dependency.
fn random_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
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
            assert!((Duration::from_millis(125)..=Duration::from_millis(250)).contains(&first));
            let second = policy.delay(2);
            assert!((Duration::from_millis(250)..=Duration::from_millis(500)).contains(&second));
            let late = policy.delay(30);
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&late));
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

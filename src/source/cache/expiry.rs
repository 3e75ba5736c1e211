//! When a cached token counts as expiring: its configured margins, and how long requests
//! sent with this cache's tokens recently took, from taking the token to the answer, so that
//! a token that would expire before a request sent now arrives counts as expiring.
//!
//! The latency is one `AtomicU64`, no lock: the request rules report every request, and most
//! reports only load it (a write happens when a window starts or a slower request sets a new
//! peak).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::token::{ExpiryPolicy, Token};

/// The peak is kept per window of this many seconds; the estimate is the slowest request of
/// the current window and the one before (the last 5 to 10 s).
const WINDOW_SECS: u64 = 5;

/// The latency margin is this many times the recent peak: queues grow fastest just when
/// tokens expire (callers that waited for a refresh all send at once).
const HEADROOM: u32 = 2;

/// The latency margin never takes more than this share of a token's lifetime: a slow network
/// (or an API that holds requests, like a long poll) must not make every fresh token
/// "expiring", which would refresh it in a loop. A token is handed out for at least the first
/// half of its life, whatever the latency.
pub(crate) const MAX_LATENCY_SHARE: u32 = 2;

const MS_BITS: u32 = 24;
const MS_MAX: u64 = (1 << MS_BITS) - 1;

/// The slowest recent request: `window << 48 | peak of that window << 24 | peak of the one
/// before`, in milliseconds (at most 4.6 hours each).
#[derive(Debug, Default)]
pub(crate) struct Latency(AtomicU64);

fn window(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / WINDOW_SECS)
        & 0xffff
}

fn unpack(packed: u64) -> (u64, u64, u64) {
    (packed >> 48, (packed >> MS_BITS) & MS_MAX, packed & MS_MAX)
}

fn pack(window: u64, current: u64, previous: u64) -> u64 {
    window << 48 | current << MS_BITS | previous
}

impl Latency {
    /// Records one request that took `took`, at `now`.
    pub(crate) fn observe(&self, took: Duration, now: SystemTime) {
        let ms = u64::try_from(took.as_millis())
            .unwrap_or(MS_MAX)
            .min(MS_MAX);
        let w = window(now);
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let (at, current, previous) = unpack(packed);
                if at == w {
                    (ms > current).then(|| pack(w, ms, previous))
                } else if (at + 1) & 0xffff == w {
                    Some(pack(w, ms, current))
                } else {
                    // Nothing reported for a whole window (or the clock went back).
                    Some(pack(w, ms, 0))
                }
            });
    }

    /// The slowest request of the last 5 to 10 s, at `now`.
    pub(crate) fn peak(&self, now: SystemTime) -> Duration {
        let (at, current, previous) = unpack(self.0.load(Ordering::Relaxed));
        let w = window(now);
        let ms = if at == w {
            current.max(previous)
        } else if (at + 1) & 0xffff == w {
            current
        } else {
            0
        };
        Duration::from_millis(ms)
    }
}

/// When a token stops being handed out and when its replacement is fetched, worked out
/// once per token; the read path compares one time in the common case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// Before this, the token is fresh whatever the latency: the only comparison most reads
    /// make.
    quiet_until: SystemTime,
    expires_at: SystemTime,
    /// The configured margin and refresh-ahead, clamped to the token's lifetime.
    margin: Duration,
    ahead: Duration,
    /// The most the latency margin may take (a share of the lifetime).
    cap: Duration,
}

/// Where a token stands at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Fresh,
    RefreshDue,
    Expiring,
}

impl Deadlines {
    /// The deadlines of `token`, installed at `now`; `None` for a token that never expires.
    pub(crate) fn of(token: &Token, policy: &ExpiryPolicy, now: SystemTime) -> Option<Self> {
        let expires_at = token.expires_at()?;
        let valid_until = policy.valid_until(token)?;
        let refresh_at = policy.refresh_at(token)?;
        let margin = expires_at.duration_since(valid_until).unwrap_or_default();
        let ahead = valid_until.duration_since(refresh_at).unwrap_or_default();
        // Without a known lifetime, the time it had left when it arrived.
        let lifetime = token
            .lifetime()
            .unwrap_or_else(|| expires_at.duration_since(now).unwrap_or_default());
        let cap = (lifetime / MAX_LATENCY_SHARE).max(margin);
        let quiet_until = expires_at.checked_sub(cap + ahead).unwrap_or(UNIX_EPOCH);
        Some(Deadlines {
            quiet_until,
            expires_at,
            margin,
            ahead,
            cap,
        })
    }

    /// Whether the token is fresh at `now` whatever the latency: the first part of its life,
    /// when requests sent with it need not be timed.
    pub(crate) fn is_quiet(&self, now: SystemTime) -> bool {
        now < self.quiet_until
    }

    /// Where the token stands at `now`, with requests recently taking up to
    /// `latency.peak(now)`.
    pub(crate) fn phase(&self, now: SystemTime, latency: &Latency) -> Phase {
        if self.is_quiet(now) {
            return Phase::Fresh;
        }
        let valid_until = self.valid_until(now, latency);
        if now >= valid_until {
            Phase::Expiring
        } else if now >= valid_until.checked_sub(self.ahead).unwrap_or(UNIX_EPOCH) {
            Phase::RefreshDue
        } else {
            Phase::Fresh
        }
    }

    /// From when the token is no longer handed out: the configured margin before its
    /// expiry, or twice the recent peak latency if that is longer, at most the cap.
    pub(crate) fn valid_until(&self, now: SystemTime, latency: &Latency) -> SystemTime {
        let margin = self
            .margin
            .max((latency.peak(now) * HEADROOM).min(self.cap));
        self.expires_at.checked_sub(margin).unwrap_or(UNIX_EPOCH)
    }

    /// How long background refreshes have before callers must wait.
    pub(crate) fn refresh_window(&self) -> Duration {
        self.ahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::AccessToken;

    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1 << 30)
    }

    #[test]
    fn the_peak_is_the_slowest_request_of_the_last_two_windows() {
        let latency = Latency::default();
        let t0 = start();
        assert_eq!(latency.peak(t0), Duration::ZERO);
        latency.observe(Duration::from_millis(300), t0);
        latency.observe(Duration::from_millis(100), t0);
        assert_eq!(latency.peak(t0), Duration::from_millis(300));
        // The next window still remembers the last one's peak.
        let t1 = t0 + Duration::from_secs(WINDOW_SECS);
        latency.observe(Duration::from_millis(50), t1);
        assert_eq!(latency.peak(t1), Duration::from_millis(300));
        // A window later it is gone; the 50 ms remain.
        let t2 = t1 + Duration::from_secs(WINDOW_SECS);
        assert_eq!(latency.peak(t2), Duration::from_millis(50));
        // After a silent window, nothing old counts.
        let t4 = t2 + Duration::from_secs(2 * WINDOW_SECS);
        assert_eq!(latency.peak(t4), Duration::ZERO);
        latency.observe(Duration::from_millis(20), t4);
        assert_eq!(latency.peak(t4), Duration::from_millis(20));
        // A huge value saturates instead of spilling into the other fields.
        latency.observe(Duration::from_secs(1 << 40), t4);
        assert_eq!(latency.peak(t4), Duration::from_millis(MS_MAX));
        assert_eq!(
            latency.peak(t4 + Duration::from_secs(WINDOW_SECS)),
            Duration::from_millis(MS_MAX)
        );
    }

    fn two_second_token(issued: SystemTime) -> (Token, Deadlines) {
        let token = Token::new(AccessToken::new("t")).with_lifetime(issued, Duration::from_secs(2));
        let deadlines = Deadlines::of(&token, &ExpiryPolicy::default(), issued).unwrap();
        (token, deadlines)
    }

    #[test]
    fn without_latency_the_configured_margins_hold() {
        let issued = start();
        let (_, d) = two_second_token(issued);
        let latency = Latency::default();
        // Default margin and refresh-ahead, clamped to a quarter of 2 s each.
        let ms = |n| issued + Duration::from_millis(n);
        assert_eq!(d.phase(ms(999), &latency), Phase::Fresh);
        assert_eq!(d.phase(ms(1000), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(1499), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(1500), &latency), Phase::Expiring);
    }

    #[test]
    fn a_token_that_would_expire_in_flight_is_expiring() {
        let issued = start();
        let (_, d) = two_second_token(issued);
        let latency = Latency::default();
        let ms = |n| issued + Duration::from_millis(n);
        // Requests take 400 ms: twice that is the margin, 0.8 s instead of 0.5 s.
        latency.observe(Duration::from_millis(400), issued);
        assert_eq!(d.phase(ms(699), &latency), Phase::Fresh);
        assert_eq!(d.phase(ms(700), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(1199), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(1200), &latency), Phase::Expiring);
    }

    /// A slow network never makes a fresh token expiring: the latency margin stops at half
    /// the lifetime, so the token is handed out for its first second, and its replacement is
    /// fetched from 0.5 s (the refresh-ahead before that), not in a loop.
    #[test]
    fn the_latency_margin_is_capped_at_half_the_lifetime() {
        let issued = start();
        let (_, d) = two_second_token(issued);
        let latency = Latency::default();
        let ms = |n| issued + Duration::from_millis(n);
        latency.observe(Duration::from_secs(30), issued);
        assert_eq!(d.phase(issued, &latency), Phase::Fresh);
        assert_eq!(d.phase(ms(499), &latency), Phase::Fresh);
        assert_eq!(d.phase(ms(500), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(999), &latency), Phase::RefreshDue);
        assert_eq!(d.phase(ms(1000), &latency), Phase::Expiring);
        // A one-hour token: handed out for 30 minutes at least.
        let token =
            Token::new(AccessToken::new("t")).with_lifetime(issued, Duration::from_secs(3600));
        let d = Deadlines::of(&token, &ExpiryPolicy::default(), issued).unwrap();
        // Requests that take four hours, reported just before each read.
        let phase = |secs| {
            let now = issued + Duration::from_secs(secs);
            latency.observe(Duration::from_secs(4 * 3600), now);
            d.phase(now, &latency)
        };
        assert_eq!(phase(1499), Phase::Fresh);
        assert_eq!(phase(1500), Phase::RefreshDue);
        assert_eq!(phase(1799), Phase::RefreshDue);
        assert_eq!(phase(1800), Phase::Expiring);
    }

    #[test]
    fn a_token_without_a_lifetime_is_capped_by_the_time_it_had_left() {
        let installed = start();
        let token = Token::new(AccessToken::new("t"))
            .with_expires_at(Some(installed + Duration::from_secs(600)));
        let d = Deadlines::of(&token, &ExpiryPolicy::default(), installed).unwrap();
        let latency = Latency::default();
        let slow = |secs| {
            let now = installed + Duration::from_secs(secs);
            latency.observe(Duration::from_secs(3600), now);
            d.phase(now, &latency)
        };
        // Unclamped default margins (60 s, 300 s ahead); the cap is half of the 600 s left.
        assert_eq!(slow(0), Phase::RefreshDue);
        assert_eq!(slow(299), Phase::RefreshDue);
        assert_eq!(slow(300), Phase::Expiring);
        let s = |n| installed + Duration::from_secs(n);
        let quiet = Latency::default();
        assert_eq!(d.phase(s(239), &quiet), Phase::Fresh);
        assert_eq!(d.phase(s(240), &quiet), Phase::RefreshDue);
        assert_eq!(d.phase(s(540), &quiet), Phase::Expiring);
    }
}

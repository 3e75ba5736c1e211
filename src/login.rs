//! What a store keeps about a login besides its tokens, so that every process sharing the
//! store can tell: which login a token belongs to (its identity, made at sign-in), how many
//! refreshes it has been through (its generation), whether a refresh with its refresh token
//! is in flight and since when (the in-flight record), and whether a login under a key ended
//! (a tombstone, under a key of its own). All of it rides inside the stored [`Token`]'s JSON,
//! so every store that keeps a token whole keeps it too; none of it is a secret.
//!
//! [`Token`]: crate::Token

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

/// A login's identity and bookkeeping, stored with its token (the `login` field of its JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lineage {
    /// Made when the login is created (a sign-in, a device flow, `from_token`); never
    /// changes while the login lives.
    pub(crate) id: String,
    /// One more with every refresh saved: of two copies of one login, the higher one is
    /// newer (a store that lost its data is refilled with the newest copy any process has).
    #[serde(default)]
    pub(crate) generation: u64,
    /// A refresh with this token's refresh token was sent and its outcome is not known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refreshing: Option<Box<InFlight>>,
    /// Set only on a tombstone: how the login ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ended: Option<Ended>,
}

impl Lineage {
    /// A new login's identity: 128 random bits.
    pub(crate) fn new() -> Self {
        Lineage {
            id: random_id(),
            generation: 0,
            refreshing: None,
            ended: None,
        }
    }
}

/// How a refresh token came to be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Presentation {
    /// The first time.
    First,
    /// Once more, after the first one's answer was lost.
    Again,
    /// Not presented yet: the store had lost its data and this copy was put back from a
    /// process's memory. A refresh may have been in flight when the data went (its record
    /// went with it), so the copy is treated as one whose outcome is not known yet.
    Restored,
}

/// The in-flight record: a refresh with the refresh token whose fingerprint is `spent` was
/// sent at `since` (the sender's wall clock) by `holder`, who reads its answer for at most
/// `bound` after that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InFlight {
    pub(crate) spent: String,
    pub(crate) since_ms: u64,
    pub(crate) bound_ms: u64,
    pub(crate) holder: String,
    pub(crate) presentation: Presentation,
    /// The holder knows the answer is lost (a gateway's 502, a connection cut, its own read
    /// ran out): nobody needs to wait for it.
    #[serde(default)]
    pub(crate) lost: bool,
}

/// Clocks of the processes sharing a store may differ by this much: a record written by
/// another machine is waited for this much longer.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(1);

impl InFlight {
    /// A record of a presentation of the refresh token whose secret is `spent`.
    pub(crate) fn new(
        spent: &str,
        now: SystemTime,
        bound: Duration,
        holder: &str,
        presentation: Presentation,
    ) -> Self {
        InFlight {
            spent: fingerprint(spent),
            since_ms: unix_ms(now),
            bound_ms: u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            holder: holder.to_owned(),
            presentation,
            lost: false,
        }
    }

    /// When nobody can still be reading the answer: at once when the holder said it is
    /// lost; else the end of the holder's bound, plus the clock skew allowance.
    pub(crate) fn settles_at(&self) -> SystemTime {
        if self.lost {
            return UNIX_EPOCH;
        }
        let end = self.since_ms.saturating_add(self.bound_ms);
        UNIX_EPOCH + Duration::from_millis(end) + CLOCK_SKEW
    }

    /// When it was written.
    pub(crate) fn since(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.since_ms)
    }

    /// Whether it is about the refresh token whose secret is `refresh_token`.
    pub(crate) fn is_for(&self, refresh_token: Option<&str>) -> bool {
        refresh_token.is_some_and(|r| fingerprint(r) == self.spent)
    }
}

/// What happens after the answer to a refresh was lost: a timeout, a gateway's 502 or 504,
/// a connection cut, a holder that died or was stopped while it waited. The provider may or
/// may not have rotated the refresh token; nobody knows. Set it with
/// [`OAuthConfigBuilder::lost_refresh`](crate::OAuthConfigBuilder::lost_refresh).
///
/// Whatever the setting, the refresh token is never presented again *within the call* whose
/// answer was lost, never while another process may still be reading that answer (the
/// in-flight bound, twice the configuration's [`timeout`](crate::OAuthConfigBuilder::timeout),
/// recorded in the store), and at most once more across every process that shares the
/// store. A login that is then lost ends in [`Error::RefreshOutcomeUnknown`](crate::Error::RefreshOutcomeUnknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LostRefresh {
    /// For providers that revoke a login when a spent refresh token comes again (RFC 9700
    /// §4.14.2 reuse detection; oidc-provider, Keycloak, Auth0 without a reuse interval).
    /// The default.
    ///
    /// Once nobody can still be reading the lost answer (its holder said so, or the in-flight
    /// bound passed), the next demand presents the refresh token once more. When the
    /// provider never got the first request (a gateway that could not reach it, a connection
    /// cut before the request arrived), the login lives on. When it did, the login was lost
    /// already (the new refresh token went with the answer), and this costs one
    /// `invalid_grant` for the whole fleet: a reuse alert at the provider, which also revokes
    /// the new refresh token nobody has.
    #[default]
    PresentOnceMore,
    /// For providers that accept a spent refresh token again for a while (Okta's grace
    /// period, 30 s by default; Auth0's reuse interval): the refresh token is presented once
    /// more as soon as the answer is known to be lost, or when half this period has passed
    /// since it was sent (whichever is first, and not after the in-flight bound), while the
    /// provider still accepts it. Past the period, as [`PresentOnceMore`](Self::PresentOnceMore).
    RetryWithinGrace(Duration),
    /// Never present a refresh token whose answer was lost: once nobody can still be reading
    /// the answer, the login ends in [`Error::RefreshOutcomeUnknown`](crate::Error::RefreshOutcomeUnknown)
    /// and no `invalid_grant` reaches the provider. For providers that treat a reuse as an
    /// incident (alerts, locked accounts); it costs a sign-in also when the provider never got
    /// the request.
    SignInAgain,
}

/// What a refresh does about an in-flight record it finds on the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Someone may still read the answer: do not present before this time.
    Wait(SystemTime),
    /// Present the refresh token (once more).
    Present,
    /// The login is lost: end it.
    End,
}

/// The in-flight bound for a configuration's `timeout`: how long a refresh request's answer
/// is read, and how long other processes give it before its refresh token is presented
/// again. Longer than the caller's wait (the timeout), so that an answer that comes after the
/// caller gave up is still kept.
pub(crate) fn in_flight_bound(timeout: Duration) -> Duration {
    timeout.saturating_mul(2)
}

/// The rule of [`LostRefresh`] for `record` at `now`.
pub(crate) fn next_step(record: &InFlight, now: SystemTime, policy: LostRefresh) -> Next {
    let settles = record.settles_at();
    let settled = now >= settles;
    match (record.presentation, policy) {
        // The store lost its data: this copy waits for any refresh that may have been in
        // flight, then is presented (refused, the login ends as one whose outcome is unknown).
        (Presentation::Restored, _) => {
            if settled {
                Next::Present
            } else {
                Next::Wait(settles)
            }
        }
        (Presentation::First, LostRefresh::RetryWithinGrace(grace))
            if now < record.since() + grace =>
        {
            let early = record.since() + grace / 2;
            if settled || now >= early {
                Next::Present
            } else {
                Next::Wait(settles.min(early))
            }
        }
        _ if !settled => Next::Wait(settles),
        (Presentation::First, LostRefresh::PresentOnceMore | LostRefresh::RetryWithinGrace(_)) => {
            Next::Present
        }
        // Presented once more and lost again, or never to be presented again.
        (Presentation::Again | Presentation::First, _) => Next::End,
    }
}

/// How a login ended (a tombstone's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Ended {
    /// Signed out with `logout()`.
    SignedOut,
    /// The provider answered that the grant is dead.
    Revoked,
    /// A refresh's answer was lost and the refresh token no longer works (or may not be
    /// presented again).
    OutcomeUnknown,
}

/// The key a tombstone of the login under `key` is kept under. A separate record, so that
/// `load(key)` of an ended login is `None` as before. The separator is a control character
/// no derived key contains.
pub(crate) fn tombstone_key(key: &str) -> String {
    format!("{key}\u{1e}ended")
}

/// Whether `key` is a tombstone's key.
pub(crate) fn is_tombstone_key(key: &str) -> bool {
    key.ends_with("\u{1e}ended")
}

/// A refresh token's fingerprint (from its secret): 128 bits of its SHA-256, which identify
/// it without revealing it.
pub(crate) fn fingerprint(refresh_token: &str) -> String {
    let digest = crate::jose::sha256(refresh_token.as_bytes());
    B64.encode(digest.get(..16).unwrap_or_default())
}

/// 128 random bits, base64url. Falls back to the time and a counter if the OS has no
/// randomness to give, which only weakens uniqueness between processes started at the same
/// nanosecond.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = format!("{nanos}-{n}-{}", std::process::id());
        let digest = crate::jose::sha256(seed.as_bytes());
        bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    }
    B64.encode(bytes)
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_identify_without_revealing() {
        let (a, b) = ("rt-secret-1", "rt-secret-2");
        assert_eq!(fingerprint(a), fingerprint(&String::from(a)));
        assert_ne!(fingerprint(a), fingerprint(b));
        assert!(!fingerprint(a).contains("secret"));
        assert_eq!(fingerprint(a).len(), 22);
    }

    #[test]
    fn an_in_flight_record_settles_after_its_bound_or_when_lost() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut record =
            InFlight::new("rt", now, Duration::from_secs(60), "h", Presentation::First);
        assert_eq!(
            record.settles_at(),
            now + Duration::from_secs(60) + CLOCK_SKEW
        );
        assert!(record.is_for(Some("rt")));
        assert!(!record.is_for(Some("other")));
        record.lost = true;
        assert!(record.settles_at() <= now);
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("\"rt\""), "{json}");
        assert_eq!(serde_json::from_str::<InFlight>(&json).unwrap(), record);
    }

    #[test]
    fn after_a_lost_answer_each_policy_waits_presents_or_ends_at_the_exact_boundary() {
        use LostRefresh::*;
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let rt = "rt";
        let bound = Duration::from_secs(60);
        let first = InFlight::new(rt, t0, bound, "h", Presentation::First);
        let settles = t0 + bound + CLOCK_SKEW;
        let just_before = settles - Duration::from_millis(1);
        // Nobody presents while the holder may still read the answer.
        assert_eq!(
            next_step(&first, just_before, PresentOnceMore),
            Next::Wait(settles)
        );
        assert_eq!(
            next_step(&first, just_before, SignInAgain),
            Next::Wait(settles)
        );
        assert_eq!(next_step(&first, settles, PresentOnceMore), Next::Present);
        assert_eq!(next_step(&first, settles, SignInAgain), Next::End);
        // The holder knows the answer is lost: no wait.
        let mut lost = first.clone();
        lost.lost = true;
        assert_eq!(next_step(&lost, t0, PresentOnceMore), Next::Present);
        assert_eq!(next_step(&lost, t0, SignInAgain), Next::End);
        // Presented once more: its answer lost too ends the login, whatever the policy.
        let again = InFlight::new(rt, t0, bound, "h", Presentation::Again);
        assert_eq!(
            next_step(&again, just_before, PresentOnceMore),
            Next::Wait(settles)
        );
        assert_eq!(next_step(&again, settles, PresentOnceMore), Next::End);
        assert_eq!(
            next_step(&again, settles, RetryWithinGrace(Duration::from_secs(600))),
            Next::End
        );
        // A grace period of 30 s: presented again at half of it, before the bound.
        let grace = RetryWithinGrace(Duration::from_secs(30));
        let half = t0 + Duration::from_secs(15);
        assert_eq!(
            next_step(&first, half - Duration::from_millis(1), grace),
            Next::Wait(half)
        );
        assert_eq!(next_step(&first, half, grace), Next::Present);
        assert_eq!(next_step(&lost, t0, grace), Next::Present);
        // Past the grace period: as PresentOnceMore.
        let past = t0 + Duration::from_secs(30);
        assert_eq!(next_step(&first, past, grace), Next::Wait(settles));
        assert_eq!(next_step(&first, settles, grace), Next::Present);
        // A copy put back after the store lost its data waits the bound, then is presented.
        let restored = InFlight::new(rt, t0, bound, "h", Presentation::Restored);
        assert_eq!(
            next_step(&restored, just_before, SignInAgain),
            Next::Wait(settles)
        );
        assert_eq!(next_step(&restored, settles, SignInAgain), Next::Present);
    }

    #[test]
    fn ids_are_random() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 22);
    }
}

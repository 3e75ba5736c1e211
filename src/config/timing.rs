//! The builder's settings of time: how long a call waits, what happens to a refresh whose
//! answer was lost, how requests are retried, when a token counts as expired, and the clock.

use std::sync::Arc;
use std::time::Duration;

use super::OAuthConfigBuilder;
use crate::clock::Clock;
#[cfg(doc)]
use crate::error::Error;
use crate::login::LostRefresh;
use crate::retry::RetryPolicy;
use crate::token::ExpiryPolicy;

impl OAuthConfigBuilder {
    /// How long a call waits for the provider, retries and their waits included: a caller
    /// asking a token source for a token waits at most this long, then gets
    /// [`Error::Timeout`]. Default 30 seconds.
    ///
    /// A token request a source's cache sends is not abandoned when its callers stop
    /// waiting: a refresh's answer is read for twice this long (the in-flight bound; other
    /// processes sharing the store wait as long before they present its refresh token again),
    /// and the token in it is kept for the next call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What the next demand does after the answer to a refresh was lost (a timeout, a
    /// gateway's 502 or 504, a connection cut, a process that died waiting), when the
    /// provider may have rotated the refresh token. Default
    /// [`LostRefresh::PresentOnceMore`], for providers with reuse detection; set
    /// [`LostRefresh::RetryWithinGrace`] for a provider with a reuse grace period (Okta,
    /// Auth0's reuse interval), [`LostRefresh::SignInAgain`] to never present such a refresh
    /// token again.
    pub fn lost_refresh(mut self, lost_refresh: LostRefresh) -> Self {
        self.lost_refresh = lost_refresh;
        self
    }

    /// How requests to the provider are retried after transient failures. Default
    /// [`RetryPolicy::default()`]: attempts spread over 10 seconds (1 s, 2 s, 4 s, 4 s apart,
    /// with jitter), for the requests that are safe to send twice; never an authorization
    /// code exchange, and a refresh only when the provider surely did not act on it.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long before its expiry a token stops being used. Default 60 seconds, clamped to a
    /// quarter of a token's lifetime (see [`ExpiryPolicy`]).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.policy = ExpiryPolicy::new(margin, self.policy.refresh_ahead());
        self
    }

    /// How long before the margin a replacement is fetched in the background, while callers
    /// keep the current token. Default 5 minutes, clamped like the margin.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.policy = ExpiryPolicy::new(self.policy.expiry_margin(), ahead);
        self
    }

    /// The clock expiry decisions use. Replace it in tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

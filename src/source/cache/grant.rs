//! What a cache is made of: the [`Grant`] that gets its tokens, where it persists them, and
//! the settings it takes from its configuration.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::OAuthConfig;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::login::LostRefresh;
use crate::retry::Flight;
use crate::store::TokenStore;
use crate::token::{ExpiryPolicy, Token};

/// How one grant gets a new token. Implemented once per grant; the cache does the rest.
pub(crate) trait Grant: Send + Sync + std::fmt::Debug + 'static {
    /// Requests a new token. `current` is the token being replaced, if any: the refresh grant
    /// takes its refresh token from it. `now` is when the request starts, the base of the new
    /// token's expiry. `flight` says what the request may do on behalf of callers that may
    /// have left (see [`Flight`]).
    fn fetch<'a>(
        &'a self,
        current: Option<&'a Token>,
        now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>>;

    /// Whether a request spends `current`'s refresh token (the refresh grant). Its cache then
    /// keeps a login's records in the store: identity, the in-flight record, tombstones.
    fn spends_refresh_token(&self) -> bool {
        false
    }
}

/// Where a cache keeps what must survive a restart.
#[derive(Debug, Clone)]
pub(crate) struct Persist {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) key: String,
}

/// What a cache takes from its configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) policy: ExpiryPolicy,
    /// How long a caller waits for a token, retries included.
    pub(crate) timeout: Duration,
    pub(crate) lost_refresh: LostRefresh,
}

impl Settings {
    pub(crate) fn of(config: &OAuthConfig) -> Self {
        Settings {
            policy: config.expiry_policy(),
            timeout: config.timeout(),
            lost_refresh: config.lost_refresh(),
        }
    }
}

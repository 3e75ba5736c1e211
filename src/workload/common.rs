//! What every workload source shares: the timeout, the clock, where environment variables
//! are read, and turning a platform's JWT into a token.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::token::{AccessToken, ExpiryPolicy, Token};

/// How long a metadata request may take: the same default as every provider request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Reads one environment variable; `None` when unset or empty. Tests give their own.
pub(crate) type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What every workload source's builder shares: the request timeout and the clock.
#[derive(Clone)]
pub(crate) struct Common {
    pub(crate) timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) env: Arc<Lookup>,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            timeout: TIMEOUT,
            clock: Arc::new(SystemClock),
            env: Arc::new(process_env),
        }
    }
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Common")
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Common {
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    pub(crate) fn http(&self) -> Result<reqwest::Client, Error> {
        crate::endpoint::http_client_from(reqwest::Client::builder(), self.timeout)
    }

    pub(crate) fn cache(
        &self,
        grant: impl crate::source::cache::Grant,
    ) -> crate::source::cache::TokenCache {
        crate::source::cache::TokenCache::new(
            grant,
            ExpiryPolicy::default(),
            self.clock.clone(),
            None,
        )
    }
}

/// The setters every workload builder has (field `common`).
macro_rules! common_setters {
    () => {
        /// Timeout of each request (30 seconds by default).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.common.timeout = timeout;
            self
        }

        /// The clock expiry is judged by (tests use a manual one).
        pub fn clock(mut self, clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
            self.common.clock = clock;
            self
        }

        /// Where environment variables are read: by default the process environment.
        /// A variable set to the empty string counts as unset.
        pub fn env_lookup(
            mut self,
            lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            self.common.env = std::sync::Arc::new(lookup);
            self
        }
    };
}
pub(crate) use common_setters;

/// A JWT handed out as a bearer token, expiring at its own `exp` (read unverified: it
/// decides only when to fetch a new one), but not later than `at_most` after `now`.
pub(crate) fn jwt_token(jwt: String, now: SystemTime, at_most: Option<Duration>) -> Token {
    let exp = crate::source::unverified_exp(&jwt)
        .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp));
    let lifetime = exp.map(|exp| exp.duration_since(now).unwrap_or(Duration::ZERO));
    let lifetime = match (lifetime, at_most) {
        (Some(l), Some(m)) => Some(l.min(m)),
        (l, m) => l.or(m),
    };
    let token = Token::new(AccessToken::new(jwt)).with_token_type("Bearer");
    match lifetime {
        Some(lifetime) => token.with_lifetime(now, lifetime),
        None => token,
    }
}

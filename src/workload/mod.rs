//! Workload credentials: tokens a platform hands to the code it runs, with no secret of
//! yours. Each is a [`TokenSource`](crate::TokenSource) over the crate's one token cache
//! (refreshed ahead of expiry, one request for any number of callers, backoff after
//! failures), with one small grant per platform:
//!
//! | Source | Platform | Asks |
//! |---|---|---|
//! | [`GcpMetadata`] | Compute Engine, GKE, Cloud Run, Cloud Functions | the metadata server (`Metadata-Flavor: Google`; `GCE_METADATA_HOST`) |
//! | [`AzureManagedIdentity`] | Azure VMs (IMDS), App Service and Functions | IMDS (`Metadata: true`) or `IDENTITY_ENDPOINT` with `IDENTITY_HEADER` |
//! | [`KubernetesServiceAccount`] | Kubernetes pods | a projected service account token file, read again as the kubelet rotates it |
//! | [`GitHubActionsOidc`] | GitHub Actions jobs with `id-token: write` | `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN` |
//!
//! [`DefaultCredentials`] picks one for you, as google-cloud-auth's and azure_identity's
//! default credentials do: the environment (`AUTHED_*`), then the workload, then a stored
//! user login.
//!
//! A Kubernetes or GitHub token is usually exchanged for a provider's token rather than
//! used as is: give it to a [token exchange](crate::TokenExchange) as
//! [`SubjectToken::source`](crate::SubjectToken::source) (or, for a file,
//! [`SubjectToken::file`](crate::SubjectToken::file)).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::token::{AccessToken, Clock, ExpiryPolicy, SystemClock, Token};

mod azure;
mod chain;
mod gcp;
mod github;
mod kubernetes;

pub use azure::{AzureManagedIdentity, AzureManagedIdentityBuilder};
pub use chain::{DefaultCredentials, DefaultCredentialsBuilder};
pub use gcp::{GcpMetadata, GcpMetadataBuilder};
pub use github::{GitHubActionsOidc, GitHubActionsOidcBuilder};
pub use kubernetes::{KubernetesServiceAccount, KubernetesServiceAccountBuilder};

/// How long a metadata request may take: the same default as every provider request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Reads one environment variable; `None` when unset or empty. Tests give their own.
pub(crate) type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What every workload source's builder shares: the request timeout and the clock.
#[derive(Clone)]
struct Common {
    timeout: Duration,
    clock: Arc<dyn Clock>,
    env: Arc<Lookup>,
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
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    fn http(&self) -> Result<reqwest::Client, Error> {
        crate::endpoint::http_client_from(reqwest::Client::builder(), self.timeout)
    }

    fn cache(&self, grant: impl crate::source::cache::Grant) -> crate::source::cache::TokenCache {
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
        pub fn clock(mut self, clock: std::sync::Arc<dyn crate::token::Clock>) -> Self {
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
use common_setters;

/// A JWT handed out as a bearer token, expiring at its own `exp` (read unverified: it
/// decides only when to fetch a new one), but not later than `at_most` after `now`.
fn jwt_token(jwt: String, now: SystemTime, at_most: Option<Duration>) -> Token {
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

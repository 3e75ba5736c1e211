//! Kubernetes projected service account tokens.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret as _;

use super::common::{Common, common_setters, jwt_token};
use crate::error::Error;
use crate::future::BoxFuture;
use crate::source::cache::{Grant, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// Where Kubernetes mounts a pod's own service account token.
pub(crate) const DEFAULT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Kubernetes rotates tokens before they expire and advises reading the file again on a
/// schedule, every few minutes.
const REREAD: Duration = Duration::from_secs(300);

/// The pod's service account token, read from its projected token file: a JWT for an API
/// that trusts the cluster's issuer (the audience is set in the pod's volume projection).
///
/// The kubelet writes a new token before the old one expires (at 80 % of its lifetime, or
/// after 24 hours). The file is read again when the token nears its `exp` and at least
/// every 5 minutes, as the Kubernetes documentation advises, by the crate's one cache (one
/// read for any number of callers). The same file read by
/// [`SubjectToken::file`](crate::SubjectToken::file) is what a
/// [token exchange](crate::TokenExchange) sends to turn it into a provider's token.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{KubernetesServiceAccount, TokenSource};
///
/// let source = KubernetesServiceAccount::builder()
///     .path("/var/run/secrets/tokens/vault-token")
///     .build();
/// let token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KubernetesServiceAccount {
    cache: TokenCache,
}

/// Builds a [`KubernetesServiceAccount`] source.
#[derive(Debug)]
#[must_use]
pub struct KubernetesServiceAccountBuilder {
    pub(super) common: Common,
    path: PathBuf,
}

impl KubernetesServiceAccount {
    /// A source reading `/var/run/secrets/kubernetes.io/serviceaccount/token`, the pod's
    /// default token.
    pub fn builder() -> KubernetesServiceAccountBuilder {
        KubernetesServiceAccountBuilder {
            common: Common::default(),
            path: PathBuf::from(DEFAULT_PATH),
        }
    }
}

impl KubernetesServiceAccountBuilder {
    common_setters!();

    /// The projected token file (the `path` of a `serviceAccountToken` volume projection).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Builds the source. The file is read when the first token is needed: a missing or
    /// empty file is then an [`Error::Config`] naming it.
    pub fn build(self) -> KubernetesServiceAccount {
        let grant = FileGrant { path: self.path };
        KubernetesServiceAccount {
            cache: self.common.cache(grant),
        }
    }
}

impl TokenSource for KubernetesServiceAccount {
    fn token(&self) -> TokenFuture<'_> {
        self.cache.token()
    }

    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        self.cache.token_rejected(rejected)
    }

    fn request_latency(&self, took: std::time::Duration) {
        self.cache.request_latency(took);
    }
}

#[derive(Debug)]
struct FileGrant {
    path: PathBuf,
}

impl Grant for FileGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        _flight: &'a crate::retry::Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let jwt = crate::endpoint::read_assertion_file(&self.path).await?;
            Ok(jwt_token(jwt.expose_secret().to_owned(), now, Some(REREAD)))
        })
    }
}

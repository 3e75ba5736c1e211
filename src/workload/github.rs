//! GitHub Actions' OIDC token: a JWT about the running job, for a cloud or an API that
//! trusts `https://token.actions.githubusercontent.com`.

use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::common::{Common, common_setters, jwt_token};
use crate::error::Error;
use crate::future::BoxFuture;
use crate::source::cache::{Grant, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

pub(crate) const URL_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub(crate) const TOKEN_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// The OIDC token of the GitHub Actions job this runs in, for one audience.
///
/// GitHub gives a job that has `permissions: id-token: write` two variables:
/// `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`. The source asks that
/// URL, with the request token as a bearer token and the `audience` parameter, for a JWT
/// (the `value` of the answer), and asks again as it nears its `exp`. Exchange it with a
/// [token exchange](crate::TokenExchange)
/// ([`SubjectToken::source`](crate::SubjectToken::source) with
/// [`token_types::JWT`](crate::token_types::JWT)), or send it to an API that accepts it.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{GitHubActionsOidc, TokenSource};
///
/// let source = GitHubActionsOidc::builder()
///     .audience("api://AzureADTokenExchange")
///     .build()?;
/// let jwt = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GitHubActionsOidc {
    cache: TokenCache,
}

/// Builds a [`GitHubActionsOidc`] source.
#[derive(Debug)]
#[must_use]
pub struct GitHubActionsOidcBuilder {
    pub(super) common: Common,
    audience: Option<String>,
}

impl GitHubActionsOidc {
    /// A source for the job's token, with GitHub's default audience (the repository
    /// owner's URL) unless you set one.
    pub fn builder() -> GitHubActionsOidcBuilder {
        GitHubActionsOidcBuilder {
            common: Common::default(),
            audience: None,
        }
    }
}

impl GitHubActionsOidcBuilder {
    common_setters!();

    /// The token's `aud`: what the receiving party expects (for example
    /// `api://AzureADTokenExchange`, `sts.amazonaws.com`, or a GCP workload identity
    /// provider's URL).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Reads the two variables and builds the source. No request is made until the first
    /// token is needed.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a variable is missing (not in GitHub Actions, or the job lacks
    /// `permissions: id-token: write`) or the URL is not an HTTP(S) URL.
    pub fn build(self) -> Result<GitHubActionsOidc, Error> {
        let missing = |name: &str| {
            Error::config(format!(
                "{name} is not set: not a GitHub Actions job, or the job lacks \
                 `permissions: id-token: write`"
            ))
        };
        let raw = self.common.var(URL_VAR).ok_or_else(|| missing(URL_VAR))?;
        let request_token = self
            .common
            .var(TOKEN_VAR)
            .ok_or_else(|| missing(TOKEN_VAR))?;
        let mut url = Url::parse(&raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::config(format!("{URL_VAR} is not an HTTP(S) URL")))?;
        if let Some(audience) = &self.audience {
            url.query_pairs_mut().append_pair("audience", audience);
        }
        let mut bearer = HeaderValue::from_str(&format!("Bearer {request_token}"))
            .map_err(|_| Error::config(format!("{TOKEN_VAR} is not a header value")))?;
        bearer.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, bearer);
        let grant = OidcGrant {
            http: self.common.http()?,
            timeout: self.common.timeout,
            url,
            headers,
        };
        Ok(GitHubActionsOidc {
            cache: self.common.cache(grant),
        })
    }
}

impl TokenSource for GitHubActionsOidc {
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

struct OidcGrant {
    http: reqwest::Client,
    timeout: Duration,
    url: Url,
    headers: HeaderMap,
}

impl std::fmt::Debug for OidcGrant {
    // Not the URL (its query is GitHub's) nor the headers (the request token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcGrant").finish_non_exhaustive()
    }
}

impl Grant for OidcGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        _flight: &'a crate::retry::Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let answer = crate::endpoint::get_workload(
                &self.http,
                &self.url,
                self.headers.clone(),
                self.timeout,
                |_| Ok(()),
            )
            .await
            .map_err(|e| match e {
                Error::MalformedResponse {
                    status: status @ (401 | 403),
                    ..
                } => Error::config(format!(
                    "GitHub refused the OIDC token request (HTTP {status}): the request token \
                     is not valid for this job"
                )),
                other => other,
            })?;
            let value = answer
                .str("value")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::malformed(answer.status, "no value in the OIDC token answer")
                })?;
            Ok(jwt_token(value.to_owned(), now, None))
        })
    }
}

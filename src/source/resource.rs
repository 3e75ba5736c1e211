//! The refresh token grant, and tokens for several resources or scope sets from one login
//! (RFC 8707 §2.2; the model of MSAL's and azure_identity's `get_token(scopes)`, and of MCP's
//! resource rule): each target has its own cache (its own cached access token and single
//! flight), and every one of them spends the login's one refresh token through the login's
//! own cache ([`TokenCache::refresh_for`]): one rotation lock, the rotated refresh token kept
//! in one place and saved before any new token is handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::oauth_error::OAuthError;
use crate::retry::Flight;
use crate::source::cache::{Grant, Settings, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// What a token is for: an RFC 8707 resource, a scope set, or both. The login's own token
/// has a target too (the sign-in's one resource, if it named exactly one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) resource: Option<String>,
    /// Sorted, without repeats: the same set is the same target.
    pub(crate) scopes: Vec<String>,
}

impl Target {
    pub(crate) fn new(resource: Option<String>, mut scopes: Vec<String>) -> Self {
        scopes.sort();
        scopes.dedup();
        Target { resource, scopes }
    }
}

/// The refresh token grant (RFC 6749 §6), asking for `target` (`resource`, RFC 8707 §2.2;
/// `scope`, no more than the login was granted).
#[derive(Debug)]
pub(crate) struct RefreshGrant {
    pub(crate) config: OAuthConfig,
    pub(crate) target: Target,
    /// `authorization_details` for every refresh (RFC 9396 §7), as the form parameter.
    pub(crate) details: Option<String>,
}

impl Grant for RefreshGrant {
    fn spends_refresh_token(&self) -> bool {
        true
    }

    fn fetch<'a>(
        &'a self,
        current: Option<&'a Token>,
        now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let Some(refresh_token) = current.and_then(Token::refresh_token) else {
                // Nothing left to renew the login with: the same outcome as a revoked grant,
                // so callers handle one case (sign in again).
                return Err(Error::TokenRevoked(
                    OAuthError::new("invalid_grant").with_description(Some(
                        "the login has no valid token and no refresh token; sign in again",
                    )),
                ));
            };
            let mut form =
                Form::grant_type("refresh_token").with("refresh_token", refresh_token.secret());
            if let Some(resource) = &self.target.resource {
                form = form.with("resource", resource.clone());
            }
            if !self.target.scopes.is_empty() {
                form = form.with("scope", self.target.scopes.join(" "));
            }
            if let Some(details) = &self.details {
                form = form.with("authorization_details", details.clone());
            }
            // A DPoP-bound login refreshes with its own key (a public client's refresh
            // token is bound to it, RFC 9449 §5), whatever key the configuration has now.
            let endpoint = self.config.endpoint();
            let key = current
                .and_then(Token::dpop_key)
                .or_else(|| endpoint.dpop_key());
            endpoint
                .token_with(&self.config.endpoints().token_url, form, now, key, flight)
                .await
        })
    }
}

/// A target's grant: the refresh token grant for it, sent through the login's cache.
#[derive(Debug)]
struct ResourceGrant {
    login: TokenCache,
    refresh: RefreshGrant,
}

impl Grant for ResourceGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        _now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(self.login.refresh_for(&self.refresh, flight))
    }
}

/// The caches of one login's targets, shared by the login's clones: asking twice for one
/// target gives the same cache. Grows with the number of distinct targets asked for.
#[derive(Debug, Default)]
pub(crate) struct ResourceCaches(Mutex<HashMap<Target, TokenCache>>);

impl ResourceCaches {
    fn get(&self, login: &TokenCache, config: &OAuthConfig, target: &Target) -> TokenCache {
        let mut caches = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        caches
            .entry(target.clone())
            .or_insert_with(|| {
                let grant = ResourceGrant {
                    login: login.clone(),
                    refresh: RefreshGrant {
                        config: config.clone(),
                        target: target.clone(),
                        // The login's details narrow its own tokens; a target's token asks for
                        // what its resource and scopes say.
                        details: None,
                    },
                };
                // In memory only: a target's token is cheap to get again from the login,
                // which is what the store keeps.
                TokenCache::new(grant, Settings::of(config), config.clock().clone(), None)
            })
            .clone()
    }

    /// Forgets every target's token (a logout).
    pub(crate) fn clear(&self) {
        let caches = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for cache in caches.values() {
            cache.clear();
        }
    }
}

/// Tokens for one resource or scope set of a signed-in login (RFC 8707 §2.2), from
/// [`RefreshTokenSource::for_resource`](crate::RefreshTokenSource::for_resource) or
/// [`for_scopes`](crate::RefreshTokenSource::for_scopes).
///
/// Each target has its own cached access token and its own single flight (ten thousand
/// callers of one target, one token request); every target of a login spends the login's one
/// refresh token, one at a time, each reading the refresh token the previous one left, and a
/// rotated refresh token is saved to the login's store before the new access token is handed
/// out, so a refresh for one resource never loses another's. The refresh requests carry
/// `resource` and `scope`; the provider must have granted them at sign-in (name every
/// resource with [`AuthorizationCodeBuilder::resource`](crate::AuthorizationCodeBuilder::resource)).
/// A target's access tokens are kept in memory only; the login (its refresh token) is what
/// the store keeps.
#[derive(Debug, Clone)]
pub struct ResourceTokenSource {
    cache: TokenCache,
    target: Arc<Target>,
}

impl ResourceTokenSource {
    /// The resource its tokens are for, if one was named.
    pub fn resource(&self) -> Option<&str> {
        self.target.resource.as_deref()
    }

    /// The scopes its tokens are asked for (sorted).
    pub fn scopes(&self) -> &[String] {
        &self.target.scopes
    }

    /// The token held now, valid or not, without refreshing.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.cache.peek()
    }
}

impl TokenSource for ResourceTokenSource {
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

/// Builds a [`ResourceTokenSource`]; from
/// [`RefreshTokenSource::for_resource`](crate::RefreshTokenSource::for_resource) or
/// [`for_scopes`](crate::RefreshTokenSource::for_scopes).
#[derive(Debug)]
#[must_use]
pub struct ResourceTokenSourceBuilder {
    login: TokenCache,
    config: OAuthConfig,
    caches: Arc<ResourceCaches>,
    resource: Option<String>,
    scopes: Vec<String>,
    granted: Arc<[String]>,
}

impl ResourceTokenSourceBuilder {
    pub(crate) fn new(
        login: TokenCache,
        config: OAuthConfig,
        caches: Arc<ResourceCaches>,
        resource: Option<String>,
        granted: Arc<[String]>,
    ) -> Self {
        ResourceTokenSourceBuilder {
            login,
            config,
            caches,
            resource,
            scopes: Vec::new(),
            granted,
        }
    }

    /// Scopes to ask for (sent as `scope`), no more than the login was granted. May be called
    /// more than once.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The source for this target: the same cache as every other source of this login for
    /// the same resource and scope set.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a resource that is not an absolute URI, or has a fragment
    /// (RFC 8707 §2), or that the login's grant does not cover when the login knows its
    /// resources (named at sign-in, or to
    /// [`RefreshTokenSourceBuilder::resource`](crate::RefreshTokenSourceBuilder::resource)):
    /// nothing is sent, since some providers spend the refresh token before they refuse such
    /// a resource.
    pub fn build(self) -> Result<ResourceTokenSource, Error> {
        if let Some(resource) = &self.resource {
            check_resource(resource)?;
            if !self.granted.is_empty() && !self.granted.contains(resource) {
                return Err(Error::config(
                    "the login's grant does not cover this resource: name it at sign-in                      (AuthorizationCodeBuilder::resource)",
                ));
            }
        }
        let target = Target::new(self.resource, self.scopes);
        let cache = self.caches.get(&self.login, &self.config, &target);
        Ok(ResourceTokenSource {
            cache,
            target: Arc::new(target),
        })
    }
}

/// RFC 8707 §2: "an absolute URI ... MUST NOT include a fragment component". Sent as given:
/// the provider compares it with what it knows.
pub(crate) fn check_resource(resource: &str) -> Result<(), Error> {
    match url::Url::parse(resource) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        _ => Err(Error::config(
            "a resource indicator is an absolute URI without a fragment (RFC 8707 §2)",
        )),
    }
}

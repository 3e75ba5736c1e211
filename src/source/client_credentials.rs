use std::sync::Arc;
use std::time::SystemTime;

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::retry::Flight;
use crate::source::cache::{Grant, Persist, Settings, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::store::{IntoTokenStore, TokenStore};
use crate::token::Token;

/// Tokens for the client itself, with the client credentials grant (RFC 6749 §4.4): the
/// service-to-service case.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{OAuthConfig, TokenSource};
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("reports-job")
///     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
///     .build()?;
/// let source = config
///     .client_credentials()
///     .scopes(["reports:read"])
///     .audience("https://api.example.com")
///     .build();
/// let token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    cache: TokenCache,
    key: Arc<str>,
}

/// Builds a [`ClientCredentials`] source; from [`OAuthConfig::client_credentials`].
#[derive(Debug)]
#[must_use]
pub struct ClientCredentialsBuilder {
    config: OAuthConfig,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    details: Vec<crate::AuthorizationDetail>,
    store: Option<Arc<dyn TokenStore>>,
}

// Written here rather than in config.rs, so that the configuration does not import the
// sources made from it.
impl OAuthConfig {
    /// A source of tokens for the client itself (the client credentials grant).
    pub fn client_credentials(&self) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder::new(self.clone())
    }
}

impl ClientCredentialsBuilder {
    pub(crate) fn new(config: OAuthConfig) -> Self {
        ClientCredentialsBuilder {
            config,
            scopes: Vec::new(),
            params: Vec::new(),
            details: Vec::new(),
            store: None,
        }
    }

    crate::source::setters::request_setters!();

    /// Rich authorization requests (RFC 9396 §6): `authorization_details` sent with each
    /// token request. May be called more than once; part of the cache key, like scopes. What
    /// was granted is on the token:
    /// [`Token::authorization_details`](crate::Token::authorization_details).
    pub fn authorization_details<I>(mut self, details: I) -> Self
    where
        I: IntoIterator<Item = crate::AuthorizationDetail>,
    {
        self.details.extend(details);
        self
    }

    /// The `audience` parameter (Auth0, Okta and others name the API this way).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.param("audience", audience)
    }

    /// A `resource` parameter (RFC 8707); may be given more than once.
    pub fn resource(self, resource: impl Into<String>) -> Self {
        self.param("resource", resource)
    }

    /// Keeps tokens in `store`, so a restart reuses a still-valid token instead of asking for
    /// a new one.
    pub fn store(mut self, store: impl IntoTokenStore) -> Self {
        self.store = Some(store.into_token_store());
        self
    }

    /// Builds the source. No request is made until the first token is needed.
    pub fn build(mut self) -> ClientCredentials {
        if !self.scopes.is_empty() {
            self.params
                .push(("scope".to_owned(), self.scopes.join(" ")));
        }
        if !self.details.is_empty() {
            let details = crate::authorization_details::to_param(&self.details);
            self.params
                .push(("authorization_details".to_owned(), details));
        }
        let key: Arc<str> = cache_key(
            "client_credentials",
            self.config.endpoints().token_url.as_str(),
            self.config.client_id(),
            &self.scopes,
            &self.params,
        )
        .into();
        let persist = self.store.map(|store| Persist {
            store,
            key: key.to_string(),
        });
        let settings = Settings::of(&self.config);
        let clock = self.config.clock().clone();
        let grant = ClientCredentialsGrant {
            config: self.config,
            params: self.params,
        };
        ClientCredentials {
            cache: TokenCache::new(grant, settings, clock, persist),
            key,
        }
    }
}

/// A key that differs whenever the tokens would: grant, endpoint, client, scopes and every
/// extra parameter (audience, resource). Order of scopes and parameters does not matter.
pub(crate) fn cache_key(
    grant: &str,
    token_url: &str,
    client_id: &str,
    scopes: &[String],
    params: &[(String, String)],
) -> String {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let mut params: Vec<_> = params.iter().filter(|(k, _)| k != "scope").collect();
    params.sort();
    let mut key = form_urlencoded::Serializer::new(String::new());
    key.append_pair("grant", grant)
        .append_pair("token_url", token_url)
        .append_pair("client_id", client_id)
        .append_pair("scope", &scopes.join(" "));
    for (k, v) in params {
        key.append_pair(k, v);
    }
    key.finish()
}

impl ClientCredentials {
    /// The key this source's tokens are cached and stored under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl TokenSource for ClientCredentials {
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
struct ClientCredentialsGrant {
    config: OAuthConfig,
    params: Vec<(String, String)>,
}

impl Grant for ClientCredentialsGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let form = Form::grant_type("client_credentials").extend(&self.params);
            self.config
                .endpoint()
                .token_with(
                    &self.config.endpoints().token_url,
                    form,
                    now,
                    self.config.endpoint().dpop_key(),
                    flight,
                )
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_differ_when_tokens_would() {
        let base = cache_key("cc", "https://t", "id", &s(&["a", "b"]), &[]);
        assert_eq!(
            base,
            cache_key("cc", "https://t", "id", &s(&["b", "a"]), &[])
        );
        assert_ne!(base, cache_key("cc", "https://t", "id", &s(&["a"]), &[]));
        assert_ne!(
            base,
            cache_key("cc", "https://t", "id2", &s(&["a", "b"]), &[])
        );
        let aud = |a: &str| vec![("audience".to_owned(), a.to_owned())];
        assert_ne!(
            cache_key("cc", "https://t", "id", &[], &aud("x")),
            cache_key("cc", "https://t", "id", &[], &aud("y"))
        );
    }
}

use std::sync::Arc;

use crate::config::OAuthConfig;
use crate::error::Error;
use crate::id_token::{IdTokenClaims, Jwks};
use crate::revoke::Revocation;
use crate::source::cache::{Persist, Settings, TokenCache};
use crate::source::client_credentials::cache_key;
use crate::source::resource::{
    RefreshGrant, ResourceCaches, ResourceTokenSourceBuilder, Target, check_resource,
};
use crate::source::{TokenFuture, TokenSource};
use crate::store::TokenStore;
use crate::token::Token;

/// A user's login: tokens obtained by a sign-in (authorization code, device flow, or a refresh
/// token you already hold), kept fresh with the refresh token grant (RFC 6749 §6).
///
/// Every refresh goes through the crate's one token cache: a refresh response without a
/// `refresh_token` keeps the old one; a rotated refresh token is saved to the store *before*
/// the new access token is handed out (a failed save is an [`Error::Store`] and no token);
/// with a store that locks across processes ([`FileStore`](crate::FileStore)), two processes
/// never spend the same refresh token. `invalid_grant` is [`Error::TokenRevoked`]: the login
/// is removed from the store and nothing starts a new sign-in on its own.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{MemoryStore, OAuthConfig, TokenSource};
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("my-cli")
///     .build()?;
/// match config.refresh_token_source().store(MemoryStore::new()).from_store().await? {
///     Some(login) => { let _token = login.token().await?; }
///     None => println!("not signed in"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RefreshTokenSource {
    cache: TokenCache,
    config: OAuthConfig,
    key: Arc<str>,
    claims: Option<Arc<IdTokenClaims>>,
    /// The provider's keys, for signed UserInfo answers; fetched on first use.
    jwks: Arc<Jwks>,
    /// The caches of the login's other resources and scope sets.
    resources: Arc<ResourceCaches>,
    /// The RFC 8707 resources the login's grant covers, when known (named at sign-in, or to
    /// the builder): `for_resource` refuses others before anything is sent.
    granted: Arc<[String]>,
}

/// Where a login is kept. Shared by every user sign-in flow, so that each ends in the same
/// [`RefreshTokenSource`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Login {
    pub(crate) store: Option<Arc<dyn TokenStore>>,
    pub(crate) key: Option<String>,
    /// RFC 9396 §7: `authorization_details` sent with every refresh.
    pub(crate) details: Vec<crate::AuthorizationDetail>,
    /// `require_revocation` was set: building the flow needs a revocation endpoint.
    pub(crate) require_revocation: bool,
    /// The RFC 8707 resources the login's grant covers, as the sign-in named them. With
    /// exactly one, the login's own token requests name it too.
    pub(crate) resources: Vec<String>,
}

impl Login {
    /// What building a login flow checks: with `require_revocation`, that `config` can
    /// revoke the login.
    pub(crate) fn check(&self, config: &OAuthConfig) -> Result<(), Error> {
        if self.require_revocation && config.endpoints().revocation_url.is_none() {
            return Err(Error::config(
                "require_revocation is set, and the configuration has no revocation endpoint \
                 (revocation_url, or revocation_endpoint in the provider's metadata)",
            ));
        }
        self.resources.iter().try_for_each(|r| check_resource(r))
    }

    /// The key set with `key(..)`, or the default: everything that shapes the token (token
    /// URL, client id, scopes, other request parameters) and, when known, who signed in
    /// (the validated ID token's `sub`), so that neither two configurations nor two users
    /// share a stored login.
    fn key(
        &self,
        config: &OAuthConfig,
        scopes: &[String],
        params: &[(String, String)],
        subject: Option<&str>,
    ) -> String {
        self.key.clone().unwrap_or_else(|| {
            // Who signed in goes into the grant slot, which no request parameter can reach.
            let grant = subject.map_or_else(|| "user".to_owned(), |sub| format!("user;sub={sub}"));
            cache_key(
                &grant,
                config.endpoints().token_url.as_str(),
                config.client_id(),
                scopes,
                params,
            )
        })
    }

    /// The resource the login's own token requests name: the grant's only one.
    pub(crate) fn own_resource(&self) -> Option<String> {
        match self.resources.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    fn source(&self, config: &OAuthConfig) -> RefreshTokenSource {
        self.source_at(config, self.key(config, &[], &[], None), None)
    }

    fn source_at(
        &self,
        config: &OAuthConfig,
        key: String,
        claims: Option<IdTokenClaims>,
    ) -> RefreshTokenSource {
        let key: Arc<str> = key.into();
        let persist = self.store.clone().map(|store| Persist {
            store,
            key: key.to_string(),
        });
        let grant = RefreshGrant {
            config: config.clone(),
            target: Target::new(self.own_resource(), Vec::new()),
            details: (!self.details.is_empty())
                .then(|| crate::authorization_details::to_param(&self.details)),
        };
        RefreshTokenSource {
            cache: TokenCache::new(grant, Settings::of(config), config.clock().clone(), persist),
            config: config.clone(),
            key,
            claims: claims.map(Arc::new),
            jwks: Arc::default(),
            resources: Arc::default(),
            granted: self.resources.clone().into(),
        }
    }

    /// A source starting from a token a sign-in just returned, saved to the store first.
    pub(crate) async fn start(
        &self,
        config: &OAuthConfig,
        token: Token,
    ) -> Result<RefreshTokenSource, Error> {
        let source = self.source(config);
        source.cache.seed(token).await?;
        Ok(source)
    }

    /// [`start`](Self::start) for a sign-in with these request parameters, by the user the
    /// validated ID token names (when there was one).
    pub(crate) async fn start_signed_in(
        &self,
        config: &OAuthConfig,
        token: Token,
        scopes: &[String],
        params: &[(String, String)],
        claims: Option<IdTokenClaims>,
    ) -> Result<RefreshTokenSource, Error> {
        let key = self.key(
            config,
            scopes,
            params,
            claims.as_ref().map(IdTokenClaims::sub),
        );
        let source = self.source_at(config, key, claims);
        source.cache.seed(token).await?;
        Ok(source)
    }
}

/// Builds a [`RefreshTokenSource`]; from [`OAuthConfig::refresh_token_source`].
#[derive(Debug)]
#[must_use]
pub struct RefreshTokenSourceBuilder {
    config: OAuthConfig,
    login: Login,
}

impl OAuthConfig {
    /// A user's login kept fresh with its refresh token: resumed from a store, or started
    /// from a token you obtained elsewhere.
    pub fn refresh_token_source(&self) -> RefreshTokenSourceBuilder {
        RefreshTokenSourceBuilder {
            config: self.clone(),
            login: Login::default(),
        }
    }
}

impl RefreshTokenSourceBuilder {
    crate::source::setters::login_setters!();

    /// An RFC 8707 resource the login's grant covers: name every one its sign-in named. May
    /// be called more than once. With exactly one, the login's own refreshes ask for it
    /// (as after the sign-in); [`RefreshTokenSource::for_resource`] then refuses any other
    /// before sending. Checked by `from_token` and `from_store`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.login.resources.push(resource.into());
        self
    }

    /// Rich authorization requests (RFC 9396 §7): `authorization_details` sent with every
    /// refresh, narrowing what each new access token may do to part of what the sign-in
    /// granted. May be called more than once. What was granted is on the token:
    /// [`Token::authorization_details`](crate::Token::authorization_details).
    pub fn authorization_details<I>(mut self, details: I) -> Self
    where
        I: IntoIterator<Item = crate::AuthorizationDetail>,
    {
        self.login.details.extend(details);
        self
    }

    /// A source starting from `token` (which should carry a refresh token), saved to the
    /// store first when there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] with [`require_revocation`](Self::require_revocation) and no
    /// revocation endpoint, or for a [`resource`](Self::resource) that is not an absolute URI
    /// without a fragment; [`Error::Store`] when the token cannot be saved.
    pub async fn from_token(self, token: Token) -> Result<RefreshTokenSource, Error> {
        self.login.check(&self.config)?;
        self.login.start(&self.config, token).await
    }

    /// The login saved in the store, or `None` when there is none (sign the user in).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a store, with
    /// [`require_revocation`](Self::require_revocation) and no revocation endpoint, or for a
    /// bad [`resource`](Self::resource); [`Error::Store`] when it cannot be read.
    pub async fn from_store(self) -> Result<Option<RefreshTokenSource>, Error> {
        self.login.check(&self.config)?;
        let store = self
            .login
            .store
            .clone()
            .ok_or_else(|| Error::config("from_store needs a store"))?;
        let source = self.login.source(&self.config);
        match store.load(&source.key).await? {
            Some(token) => {
                source.cache.install_loaded(token);
                Ok(Some(source))
            }
            None => Ok(None),
        }
    }
}

impl RefreshTokenSource {
    /// The key this login is stored under: resume it later with
    /// [`RefreshTokenSourceBuilder::key`] and [`from_store`](RefreshTokenSourceBuilder::from_store).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The validated ID token claims of the OpenID Connect sign-in that started this login
    /// (`None` for other logins, and for one resumed from a store): who signed in.
    pub fn id_token_claims(&self) -> Option<&IdTokenClaims> {
        self.claims.as_deref()
    }

    /// Tokens for another resource of this login (RFC 8707 §2.2): `resource` on every token
    /// request, the login's one refresh token spent for it. See [`ResourceTokenSource`](crate::ResourceTokenSource).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authed::Error> {
    /// use authed::TokenSource;
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// let (calendar, contacts) = (provider.resource_url("calendar"), provider.resource_url("contacts"));
    /// let flow = provider
    ///     .config(None)
    ///     .authorization_code("http://127.0.0.1:8400/callback")
    ///     .resource(&calendar) // every resource the app will ask tokens for
    ///     .resource(&contacts)
    ///     .build()?;
    /// let pending = flow.authorize().await?;
    /// let callback = provider.approve(pending.url()).await; // plays the browser
    /// let login = flow.complete_url(pending, &callback).await?;
    ///
    /// let calendar = login.for_resource(calendar).build()?;
    /// let contacts = login.for_resource(contacts).scopes(["contacts:read"]).build()?;
    /// let (a, b) = (calendar.token().await?, contacts.token().await?);
    /// assert_ne!(a.access_token(), b.access_token(), "one token per resource");
    /// # Ok(()) }
    /// ```
    pub fn for_resource(&self, resource: impl Into<String>) -> ResourceTokenSourceBuilder {
        ResourceTokenSourceBuilder::new(
            self.cache.clone(),
            self.config.clone(),
            self.resources.clone(),
            Some(resource.into()),
            self.granted.clone(),
        )
    }

    /// Tokens for another scope set of this login (`scope` on the refresh request, no more
    /// than was granted; MSAL's `get_token(scopes)`), with their own cache, the login's one
    /// refresh token spent for them. Add a resource with
    /// [`for_resource`](Self::for_resource) instead when there is one.
    pub fn for_scopes<I, S>(&self, scopes: I) -> ResourceTokenSourceBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ResourceTokenSourceBuilder::new(
            self.cache.clone(),
            self.config.clone(),
            self.resources.clone(),
            None,
            self.granted.clone(),
        )
        .scopes(scopes)
    }

    pub(crate) fn config(&self) -> &OAuthConfig {
        &self.config
    }

    pub(crate) fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The token held now, valid or not, without refreshing. For showing who is signed in
    /// (the ID token) or the granted scopes.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.cache.peek()
    }

    /// Signs the user out: revokes the login's tokens at the provider (RFC 7009) when a
    /// revocation endpoint is configured, then forgets the login here and in the store.
    ///
    /// The store's cross-process lock is held throughout, and the freshest stored token is
    /// the one revoked, so a refresh in another process cannot bring the login back. The
    /// store keeps a record that the login was signed out, so that a process that still
    /// holds it ends too (with a re-authorize error) instead of taking the empty key for a
    /// store that lost its data. A login another sign-in saved under the key meanwhile is
    /// not this source's: it is left alone.
    ///
    /// The answer says what happened at the provider: [`Logout::Revoked`], or
    /// [`Logout::NotRevoked`] when the configuration has no revocation endpoint, so nothing
    /// could be sent and the tokens keep working there until they expire (the login is
    /// forgotten here all the same). To rule that out when the flow is built, use
    /// `require_revocation` on its builder (for example
    /// [`AuthorizationCodeBuilder::require_revocation`](crate::AuthorizationCodeBuilder::require_revocation)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authed::Error> {
    /// use authed::{Logout, OAuthConfig, Token, AccessToken, RefreshToken};
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// let config = OAuthConfig::builder(provider.token_url())
    ///     .client_id(TestProvider::CLIENT_ID)
    ///     .build()?; // no revocation endpoint
    /// let token = Token::new(AccessToken::new("at"))
    ///     .with_refresh_token(Some(RefreshToken::new("rt")));
    /// let login = config.refresh_token_source().from_token(token).await?;
    /// match login.logout().await? {
    ///     Logout::Revoked(_) => println!("signed out everywhere"),
    ///     Logout::NotRevoked => println!("signed out here; the provider was not told"),
    ///     _ => println!("there was no login"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// [`Logout::Revoked`] carries what the provider said about each token
    /// ([`Revocation`]): a token it called already invalid (Google's 400 `invalid_token`), or
    /// an access token it cannot revoke after the refresh token was (Amazon Cognito), is a
    /// successful logout whose answer you can still read.
    ///
    /// # Errors
    ///
    /// The revocation's error (the login is removed locally all the same), or
    /// [`Error::Store`] when the store cannot be changed.
    pub async fn logout(&self) -> Result<Logout, Error> {
        let persist = self.cache.persist();
        let _lock = match persist {
            Some(p) => Some(p.store.lock(&p.key).await?),
            None => None,
        };
        let stored = match persist {
            Some(p) => p.store.load(&p.key).await?,
            None => None,
        };
        let stored = stored.filter(|s| self.cache.owns(s)).map(Arc::new);
        let token = stored.clone().or_else(|| self.cache.peek());
        let revoked = match (&token, &self.config.endpoints().revocation_url) {
            (Some(token), Some(_)) => self.config.revoke(token).await.map(Logout::Revoked),
            (Some(_), None) => {
                tracing::debug!("no revocation endpoint configured; logging out locally only");
                Ok(Logout::NotRevoked)
            }
            (None, _) => Ok(Logout::NoLogin),
        };
        self.cache.sign_out();
        self.resources.clear();
        if let Some(stored) = stored {
            self.cache.bury_signed_out(&stored).await?;
        }
        revoked
    }
}

/// What [`RefreshTokenSource::logout`] did at the provider. In every case the login is gone
/// from the source and its store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a logout may have revoked nothing at the provider"]
// Returned once per logout, never stored: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Logout {
    /// The login's refresh and access tokens were revoked at the provider (RFC 7009), with
    /// what it said about each.
    Revoked(Revocation),
    /// Nothing was sent to the provider: the configuration has no revocation endpoint. The
    /// tokens keep working there until they expire (a refresh token may live for months).
    NotRevoked,
    /// There was no login to revoke (already signed out); nothing was sent.
    NoLogin,
}

impl Logout {
    /// `true` for [`Logout::Revoked`].
    pub fn is_revoked(&self) -> bool {
        matches!(self, Logout::Revoked(_))
    }

    /// What the provider said about each token, when it was asked ([`Logout::Revoked`]).
    pub fn revocation(&self) -> Option<&Revocation> {
        match self {
            Logout::Revoked(revocation) => Some(revocation),
            _ => None,
        }
    }
}

impl TokenSource for RefreshTokenSource {
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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::retry::Flight;
use crate::source::cache::{Grant, Persist, Settings, TokenCache};
use crate::source::client_credentials::cache_key;
use crate::source::{TokenFuture, TokenSource};
use crate::store::{IntoTokenStore, TokenStore};
use crate::token::Token;

/// `grant_type` of the token exchange (RFC 8693 §2.1).
pub(crate) const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Token type identifiers of RFC 8693 §3, for `subject_token_type`, `actor_token_type` and
/// `requested_token_type`.
pub mod token_types {
    /// An OAuth access token.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// An OAuth refresh token.
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// A JWT (Kubernetes service account tokens, GitHub Actions OIDC tokens).
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
    /// A base64url-encoded SAML 1.1 assertion.
    pub const SAML1: &str = "urn:ietf:params:oauth:token-type:saml1";
    /// A base64url-encoded SAML 2.0 assertion.
    pub const SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
}

/// Where a token exchange gets the token it exchanges (the subject token, or the actor
/// token).
#[derive(Debug, Clone)]
pub struct SubjectToken {
    from: Origin,
    token_type: &'static str,
}

#[derive(Clone)]
enum Origin {
    Source(Arc<dyn TokenSource>),
    File(PathBuf),
    Fixed(secrecy::SecretString),
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Source(source) => f.debug_tuple("Source").field(source).finish(),
            Origin::File(path) => f.debug_tuple("File").field(path).finish(),
            Origin::Fixed(_) => f.write_str("Fixed([redacted])"),
        }
    }
}

impl SubjectToken {
    /// The access token of another source (a user's login, another service's client
    /// credentials), fetched at each exchange. Its type is
    /// [`ACCESS_TOKEN`](token_types::ACCESS_TOKEN). An `Arc<dyn TokenSource>` you already
    /// share is used as it is.
    pub fn source(source: impl TokenSource + 'static) -> Self {
        SubjectToken {
            from: Origin::Source(crate::source::shared(source)),
            token_type: token_types::ACCESS_TOKEN,
        }
    }

    /// The content of a file, read again at each exchange (exchanges happen only when the
    /// cache needs a new token), so a token the platform rotates is always picked up:
    /// Kubernetes projected service account tokens
    /// (`/var/run/secrets/tokens/...`), a GitHub Actions OIDC token saved to a file, a
    /// workload identity token file. Surrounding whitespace is trimmed. Its type is
    /// [`JWT`](token_types::JWT).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SubjectToken {
            from: Origin::File(path.into()),
            token_type: token_types::JWT,
        }
    }

    /// A token you already have. Its type is [`ACCESS_TOKEN`](token_types::ACCESS_TOKEN).
    pub fn fixed(token: impl Into<String>) -> Self {
        SubjectToken {
            from: Origin::Fixed(secrecy::SecretString::from(token.into())),
            token_type: token_types::ACCESS_TOKEN,
        }
    }

    /// The token's type identifier instead of the default one (see [`token_types`]).
    pub fn token_type(mut self, token_type: &'static str) -> Self {
        self.token_type = token_type;
        self
    }

    /// The token now.
    async fn read(&self) -> Result<secrecy::SecretString, Error> {
        match &self.from {
            Origin::Source(source) => Ok(secrecy::SecretString::from(
                source.token().await?.access_token().secret().to_owned(),
            )),
            Origin::File(path) => crate::endpoint::read_assertion_file(path).await,
            Origin::Fixed(token) => Ok(token.clone()),
        }
    }

    fn describe(&self) -> String {
        match &self.from {
            Origin::Source(_) => "source".to_owned(),
            Origin::File(path) => format!("file:{}", path.display()),
            Origin::Fixed(_) => "fixed".to_owned(),
        }
    }
}

/// Tokens from the token exchange grant (RFC 8693): a token the workload already has (the
/// subject token, from another [`TokenSource`] or a file) is exchanged for one the API
/// accepts. Workload identity federation works this way (GCP STS, a Kubernetes or GitHub
/// Actions token exchanged for a cloud token), as do delegation and impersonation at
/// providers that implement RFC 8693 (Keycloak, Okta, Auth0, ZITADEL).
///
/// The issued token is cached like any other; its `issued_token_type` is in
/// [`Token::extra`]. A `token_type` of `N_A` (RFC 8693 §2.2.1: not an access token) is
/// accepted only when you asked for another token type with
/// [`requested_token_type`](TokenExchangeBuilder::requested_token_type); the token then keeps
/// `token_type() == "N_A"` and is served as a bearer credential, which is how APIs that ask
/// for such tokens (an ID token, a JWT) take them. Otherwise it is
/// [`Error::UnsupportedTokenType`].
///
/// ```
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::testing::TestProvider;
/// use authed::{OAuthConfig, SubjectToken, TokenSource, token_types};
///
/// let provider = TestProvider::start().await;
/// # let dir = std::env::temp_dir().join(format!("authed-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("token");
/// # std::fs::write(&path, "eyJ.k8s.token").unwrap();
/// let config = OAuthConfig::builder(provider.token_url())
///     .client_id(TestProvider::CLIENT_ID)
///     .client_secret(TestProvider::CLIENT_SECRET)
///     .build()?;
/// let source = config
///     .token_exchange(SubjectToken::file(&path))
///     .audience("https://api.example.com")
///     .requested_token_type(token_types::ACCESS_TOKEN)
///     .build();
/// let token = source.token().await?;
/// assert_eq!(token.extra()["issued_token_type"], token_types::ACCESS_TOKEN);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct TokenExchange {
    cache: TokenCache,
    key: Arc<str>,
}

/// Builds a [`TokenExchange`] source; from [`OAuthConfig::token_exchange`].
#[derive(Debug)]
#[must_use]
pub struct TokenExchangeBuilder {
    config: OAuthConfig,
    subject: SubjectToken,
    actor: Option<SubjectToken>,
    requested_token_type: Option<String>,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    store: Option<Arc<dyn TokenStore>>,
}

impl OAuthConfig {
    /// A source of tokens from the token exchange grant (RFC 8693), exchanging `subject`.
    pub fn token_exchange(&self, subject: SubjectToken) -> TokenExchangeBuilder {
        TokenExchangeBuilder {
            config: self.clone(),
            subject,
            actor: None,
            requested_token_type: None,
            scopes: Vec::new(),
            params: Vec::new(),
            store: None,
        }
    }
}

impl TokenExchangeBuilder {
    crate::source::setters::request_setters!();

    /// `audience`: the logical name of the service the token is for; may be given more than
    /// once.
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.param("audience", audience)
    }

    /// `resource`: the URI of the API the token is for (RFC 8707); may be given more than
    /// once.
    pub fn resource(self, resource: impl Into<String>) -> Self {
        self.param("resource", resource)
    }

    /// `requested_token_type`: the kind of token wanted (see [`token_types`]). Default none:
    /// the provider decides, usually an access token.
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// `actor_token`: who acts on behalf of the subject (delegation, RFC 8693 §1.1).
    pub fn actor_token(mut self, actor: SubjectToken) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Keeps tokens in `store`, so a restart reuses a still-valid token.
    pub fn store(mut self, store: impl IntoTokenStore) -> Self {
        self.store = Some(store.into_token_store());
        self
    }

    /// Builds the source. No request is made until the first token is needed.
    pub fn build(mut self) -> TokenExchange {
        if !self.scopes.is_empty() {
            self.params
                .push(("scope".to_owned(), self.scopes.join(" ")));
        }
        if let Some(t) = &self.requested_token_type {
            self.params
                .push(("requested_token_type".to_owned(), t.clone()));
        }
        let mut shaping = self.params.clone();
        shaping.push(("subject".into(), self.subject.describe()));
        shaping.push(("subject_token_type".into(), self.subject.token_type.into()));
        if let Some(actor) = &self.actor {
            shaping.push(("actor".into(), actor.describe()));
        }
        let key: Arc<str> = cache_key(
            "token_exchange",
            self.config.endpoints().token_url.as_str(),
            self.config.client_id(),
            &self.scopes,
            &shaping,
        )
        .into();
        let persist = self.store.map(|store| Persist {
            store,
            key: key.to_string(),
        });
        let settings = Settings::of(&self.config);
        let clock = self.config.clock().clone();
        let grant = TokenExchangeGrant {
            config: self.config,
            subject: self.subject,
            actor: self.actor,
            accepts_not_applicable: self
                .requested_token_type
                .as_deref()
                .is_some_and(|t| t != token_types::ACCESS_TOKEN),
            params: self.params,
        };
        TokenExchange {
            cache: TokenCache::new(grant, settings, clock, persist),
            key,
        }
    }
}

impl TokenExchange {
    /// The key this source's tokens are cached and stored under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl TokenSource for TokenExchange {
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
struct TokenExchangeGrant {
    config: OAuthConfig,
    subject: SubjectToken,
    actor: Option<SubjectToken>,
    /// A non-access token type was requested: `token_type: N_A` is then expected.
    accepts_not_applicable: bool,
    params: Vec<(String, String)>,
}

impl Grant for TokenExchangeGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            use secrecy::ExposeSecret as _;
            let subject = self.subject.read().await?;
            let mut form = Form::grant_type(TOKEN_EXCHANGE_GRANT)
                .with("subject_token", subject.expose_secret())
                .with("subject_token_type", self.subject.token_type);
            if let Some(actor) = &self.actor {
                let token = actor.read().await?;
                form = form
                    .with("actor_token", token.expose_secret())
                    .with("actor_token_type", actor.token_type);
            }
            let form = form.extend(&self.params);
            let mut answer = self
                .config
                .endpoint()
                .post_token_form(&self.config.endpoints().token_url, form, flight)
                .await?;
            // RFC 8693 §2.2.1: REQUIRED. Without it the client cannot know what it holds (an
            // access token, or an ID token or SAML assertion to pass on).
            if !matches!(answer.fields.get("issued_token_type"), Some(Value::String(t)) if !t.trim().is_empty())
            {
                return Err(Error::malformed(
                    answer.status,
                    "no issued_token_type in the token exchange response (RFC 8693 §2.2.1)",
                ));
            }
            let not_applicable = self.accepts_not_applicable
                && matches!(
                    answer.fields.get("token_type"),
                    Some(Value::String(t)) if t.eq_ignore_ascii_case("N_A")
                );
            if not_applicable {
                answer.fields.remove("token_type");
            }
            let endpoint = self.config.endpoint();
            let token = endpoint.token_from_answer(answer, now, endpoint.dpop_key())?;
            Ok(if not_applicable {
                token.with_token_type("N_A")
            } else {
                token
            })
        })
    }
}

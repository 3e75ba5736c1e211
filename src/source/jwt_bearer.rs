use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::OAuthConfig;
use crate::endpoint::{Answer, Form, jwt_claims};
use crate::error::Error;
use crate::future::BoxFuture;
use crate::jose::JwsSigner;
use crate::jose::jws::Signer;
use crate::retry::Flight;
use crate::source::cache::{Grant, Persist, Settings, TokenCache};
use crate::source::client_credentials::cache_key;
use crate::source::{TokenFuture, TokenSource};
use crate::store::{IntoTokenStore, TokenStore};
use crate::token::Token;

/// `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a grant assertion is valid: short, and still long enough for a client clock a
/// few minutes off. Google accepts up to an hour.
const GRANT_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// Tokens from the JWT bearer grant (RFC 7523 §2.1): each token request carries a JWT the
/// client signs, asserting who it acts as. Google service accounts work this way (see
/// [`providers::GoogleServiceAccount`](crate::providers::GoogleServiceAccount)), as do
/// Salesforce's and DocuSign's server-to-server flows.
///
/// Each request gets a fresh assertion: `iss` (default the client id), `sub` (default the
/// issuer), `aud` (default the token endpoint URL), a random `jti`, `iat`, and `exp` five
/// minutes later, from the configuration's clock; plus any [`claim`](JwtBearerBuilder::claim)
/// you add. The client authentication of the configuration applies as usual (none for a
/// configuration without a secret or key).
///
/// ```
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::testing::{TestProvider, new_private_key_pem};
/// use authed::{OAuthConfig, SigningAlgorithm, SigningKey, TokenSource};
///
/// let provider = TestProvider::start().await;
/// // A new key for the test; yours comes from a file (`std::fs::read("robot.pem")?`).
/// let key = SigningKey::from_pem(new_private_key_pem(SigningAlgorithm::EdDSA).as_bytes())?;
/// provider.register_client_key("robot@example.com", key.public_jwk());
///
/// let config = OAuthConfig::builder(provider.token_url()).client_id("").build()?;
/// let source = config
///     .jwt_bearer(key)
///     .issuer("robot@example.com")
///     .scopes(["reports:read"])
///     .build();
/// let token = source.token().await?;
/// assert_eq!(token.scopes(), Some(&["reports:read".to_owned()][..]));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct JwtBearer {
    cache: TokenCache,
    key: Arc<str>,
}

/// Builds a [`JwtBearer`] source; from [`OAuthConfig::jwt_bearer`].
#[derive(Debug)]
#[must_use]
pub struct JwtBearerBuilder {
    config: OAuthConfig,
    /// A signer that does not fit its key fails the first token request.
    signing_key: Result<Signer, Error>,
    issuer: Option<String>,
    subject: Option<String>,
    /// Without a [`subject`](JwtBearerBuilder::subject), `sub` is the issuer (RFC 7523 §3
    /// requires one); a Google service account sends none unless it delegates.
    subject_defaults_to_issuer: bool,
    audience: Option<String>,
    claims: serde_json::Map<String, Value>,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    store: Option<Arc<dyn TokenStore>>,
}

impl OAuthConfig {
    /// A source of tokens from the JWT bearer grant (RFC 7523 §2.1), with assertions signed
    /// by `key`: a [`SigningKey`](crate::SigningKey), or any [`JwsSigner`] (a key in a KMS).
    pub fn jwt_bearer(&self, key: impl JwsSigner + 'static) -> JwtBearerBuilder {
        JwtBearerBuilder {
            config: self.clone(),
            signing_key: Signer::new(key),
            issuer: None,
            subject: None,
            subject_defaults_to_issuer: true,
            audience: None,
            claims: serde_json::Map::new(),
            scopes: Vec::new(),
            params: Vec::new(),
            store: None,
        }
    }
}

impl JwtBearerBuilder {
    crate::source::setters::request_setters!();

    /// The assertion's `iss`: who signed it (a service account's email). Default the
    /// configuration's client id.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The assertion's `sub`: whom the token is for, such as a user a service account acts
    /// for (Google's domain-wide delegation). Default the issuer (none for a
    /// [`GoogleServiceAccount`](crate::providers::GoogleServiceAccount), where `sub` means
    /// delegation).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// No `sub` unless [`subject`](Self::subject) names one: Google's service accounts
    /// (`sub` means domain-wide delegation there).
    pub(crate) fn subject_only_when_named(mut self) -> Self {
        self.subject_defaults_to_issuer = false;
        self
    }

    /// The assertion's `aud`. Default the token endpoint URL, which RFC 7523 §3 allows and
    /// Google requires.
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Another claim in the assertion (Google's `scope` and `target_audience` are claims, not
    /// request parameters). Replaces a standard claim of the same name.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Keeps tokens in `store`, so a restart reuses a still-valid token.
    pub fn store(mut self, store: impl IntoTokenStore) -> Self {
        self.store = Some(store.into_token_store());
        self
    }

    /// Builds the source. No request is made until the first token is needed.
    pub fn build(mut self) -> JwtBearer {
        if !self.scopes.is_empty() {
            self.params
                .push(("scope".to_owned(), self.scopes.join(" ")));
        }
        let issuer = self
            .issuer
            .unwrap_or_else(|| self.config.client_id().to_owned());
        let subject = self
            .subject
            .or_else(|| self.subject_defaults_to_issuer.then(|| issuer.clone()));
        let audience = self
            .audience
            .unwrap_or_else(|| self.config.endpoints().token_url.to_string());
        // Everything that shapes the token is in the key: who asks, for whom, and the claims.
        let mut shaping = self.params.clone();
        shaping.push(("assertion_iss".into(), issuer.clone()));
        if let Some(subject) = &subject {
            shaping.push(("assertion_sub".into(), subject.clone()));
        }
        shaping.push(("assertion_aud".into(), audience.clone()));
        for (k, v) in &self.claims {
            shaping.push((format!("assertion_claim_{k}"), v.to_string()));
        }
        let key: Arc<str> = cache_key(
            "jwt_bearer",
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
        let grant = JwtBearerGrant {
            config: self.config,
            signing_key: self.signing_key,
            issuer,
            subject,
            audience,
            claims: self.claims,
            params: self.params,
        };
        JwtBearer {
            cache: TokenCache::new(grant, settings, clock, persist),
            key,
        }
    }
}

impl JwtBearer {
    /// The key this source's tokens are cached and stored under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl TokenSource for JwtBearer {
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
struct JwtBearerGrant {
    config: OAuthConfig,
    signing_key: Result<Signer, Error>,
    issuer: String,
    subject: Option<String>,
    audience: String,
    claims: serde_json::Map<String, Value>,
    params: Vec<(String, String)>,
}

impl Grant for JwtBearerGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        flight: &'a Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            use secrecy::ExposeSecret as _;
            let mut claims = jwt_claims(
                &self.issuer,
                self.subject.as_deref().unwrap_or_default(),
                &self.audience,
                self.config.clock().now(),
                GRANT_ASSERTION_LIFETIME,
            );
            if self.subject.is_none() {
                claims.remove("sub");
            }
            claims.extend(self.claims.clone());
            let signer = self.signing_key.as_ref().map_err(Clone::clone)?;
            let assertion = signer.sign_jwt("JWT", &claims).await?;
            let form = Form::grant_type(JWT_BEARER_GRANT)
                .with("assertion", assertion.expose_secret())
                .extend(&self.params);
            let answer = self
                .config
                .endpoint()
                .post_token_form(&self.config.endpoints().token_url, form, flight)
                .await?;
            let endpoint = self.config.endpoint();
            endpoint.token_from_answer(
                id_token_as_access_token(answer, now),
                now,
                endpoint.dpop_key(),
            )
        })
    }
}

/// Google answers a grant for an ID token (`target_audience`) with `{"id_token": ...}` and no
/// `access_token`: the ID token is then the bearer token, valid until its `exp`.
pub(crate) fn id_token_as_access_token(mut answer: Answer, now: SystemTime) -> Answer {
    if answer.fields.contains_key("access_token") {
        return answer;
    }
    let Some(Value::String(id_token)) = answer.fields.get("id_token").cloned() else {
        return answer;
    };
    if !answer.fields.contains_key("expires_in")
        && let Some(exp) = unverified_exp(&id_token)
    {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        answer
            .fields
            .insert("expires_in".into(), (exp.saturating_sub(now)).into());
    }
    answer
        .fields
        .entry("token_type")
        .or_insert_with(|| "Bearer".into());
    answer.fields.insert("access_token".into(), id_token.into());
    answer
}

/// The `exp` of a JWT, unverified: it came from the token endpoint, over the connection the
/// crate trusts for the token itself, and decides only when to fetch a new one.
pub(crate) fn unverified_exp(jwt: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::token_from_answer;
    use serde_json::json;

    #[test]
    fn an_id_token_answer_becomes_a_bearer_token() {
        use base64::Engine as _;
        let exp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"exp": exp}).to_string());
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
        let answer = Answer {
            status: 200,
            fields: json!({"id_token": jwt}).as_object().unwrap().clone(),
        };
        let token = token_from_answer(
            id_token_as_access_token(answer, SystemTime::now()),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(token.access_token().secret(), jwt);
        let left = token
            .expires_at()
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
    }

    #[test]
    fn an_access_token_answer_is_kept() {
        let answer = Answer {
            status: 200,
            fields: json!({"access_token": "at", "id_token": "x.y.z"})
                .as_object()
                .unwrap()
                .clone(),
        };
        let token = token_from_answer(
            id_token_as_access_token(answer, SystemTime::now()),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(token.access_token().secret(), "at");
    }
}

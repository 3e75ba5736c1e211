//! OpenID Connect UserInfo (Core §5.3): the signed-in user's claims, asked for with the
//! login's access token through the crate's request rules (Bearer or DPoP with a proof, a
//! DPoP nonce answered, one refresh after a 401), read as JSON or as a signed JWT verified
//! with the provider's keys, and used only when its `sub` is the ID token's (§5.3.2).

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::authorize;
use crate::config::OAuthConfig;
use crate::endpoint::{RawAnswer, answer_from_body, observed, read_raw};
use crate::error::{Error, IdTokenError, UserInfoError};
use crate::id_token::{self, Jwks};
use crate::oauth_error::OAuthError;
use crate::origins::{Allowed, Origins};
use crate::reqwest_exchange::Reqwest;
use crate::source::{RefreshTokenSource, StaticToken, TokenSource};
use crate::telemetry::Call;
use crate::token::Token;

/// What the provider's UserInfo endpoint says about the signed-in user (OpenID Connect Core
/// §5.3), with typed getters for the standard claims of §5.1.
///
/// Only made from an answer whose `sub` is the one expected (the login's ID token's), and,
/// for a signed answer, whose signature, `iss` and `aud` were checked. `Debug` shows only the
/// subject: the rest is personal data.
#[derive(Clone, PartialEq)]
pub struct UserInfo {
    sub: String,
    claims: Map<String, Value>,
    signed: bool,
}

impl UserInfo {
    /// `sub`: the user's identifier at the provider, the same as the ID token's.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `true` when the answer was a signed JWT (`application/jwt`) whose signature was
    /// verified against the provider's JWKS; `false` for a plain JSON answer, which is as
    /// trustworthy as the TLS connection it came over.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    crate::claims::standard_claims!();
}

impl std::fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInfo")
            .field("sub", &self.sub)
            .field("signed", &self.signed)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// Asks the provider's UserInfo endpoint about the user `token` was issued for, and
    /// checks that the answer is about `sub` (the subject of that user's ID token).
    ///
    /// The request carries the token as a `Bearer`, or, for a DPoP-bound token, as `DPoP`
    /// with a proof (`ath` included; a `use_dpop_nonce` answer gets one retry with the
    /// nonce). It goes only to the configured UserInfo endpoint, follows no redirects, reads
    /// at most 1 MiB and times out like every provider request. A login's own
    /// [`RefreshTokenSource::userinfo`] does this with its current token and refreshes it
    /// once after a 401.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a UserInfo endpoint; [`Error::UserInfo`] when the answer is
    /// about another `sub` ([`UserInfoError::SubjectMismatch`]), is malformed, encrypted, or
    /// signed but fails verification; [`Error::Unauthorized`] when the endpoint refuses the
    /// token; the provider's error (`insufficient_scope`: ask for `openid`) otherwise.
    pub async fn userinfo(&self, token: &Token, sub: &str) -> Result<UserInfo, Error> {
        let source = StaticToken::from_token(token.clone());
        request(self, &Jwks::default(), &source, sub).await
    }
}

impl RefreshTokenSource {
    /// The signed-in user's claims from the provider's UserInfo endpoint (OpenID Connect
    /// Core §5.3), asked for with this login's access token (refreshed first when due, and
    /// once more after a 401 `invalid_token`), and used only when the answer's `sub` is the
    /// login's: the validated ID token's of the sign-in, or, for a login resumed from a
    /// store, the stored ID token's (Core §5.3.2). See [`OAuthConfig::userinfo`] for the
    /// request itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authed::Error> {
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// let flow = provider
    ///     .config(None)
    ///     .authorization_code("http://127.0.0.1:8400/callback")
    ///     .scopes(["openid", "email"])
    ///     .build()?;
    /// let pending = flow.authorize().await?;
    /// let callback = provider.approve(pending.url()).await; // plays the browser
    /// let login = flow.complete_url(pending, &callback).await?;
    ///
    /// let me = login.userinfo().await?;
    /// assert_eq!(me.sub(), "user-1");
    /// assert_eq!(me.email(), Some("user-1@example.com"));
    /// assert_eq!(me.email_verified(), Some(true));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UserInfo`] with [`UserInfoError::NoSubject`] when the login has no ID token
    /// (not an OpenID Connect sign-in), [`UserInfoError::SubjectMismatch`] for an answer about
    /// another user; the token's errors (a revoked login is [`Error::TokenRevoked`]); as
    /// [`OAuthConfig::userinfo`] otherwise.
    pub async fn userinfo(&self) -> Result<UserInfo, Error> {
        let sub = self
            .subject()
            .ok_or(Error::UserInfo(UserInfoError::NoSubject))?;
        request(self.config(), self.jwks(), self, &sub).await
    }

    /// Who signed in: the sign-in's validated ID token's `sub`, or the stored ID token's.
    fn subject(&self) -> Option<String> {
        if let Some(claims) = self.id_token_claims() {
            return Some(claims.sub().to_owned());
        }
        let current = self.current()?;
        id_token::stored_subject(current.id_token()?.secret())
    }
}

/// One UserInfo call in its `provider_request` span.
async fn request(
    config: &OAuthConfig,
    jwks: &Jwks,
    source: &dyn TokenSource,
    sub: &str,
) -> Result<UserInfo, Error> {
    let url = config
        .endpoints()
        .userinfo_url
        .as_ref()
        .ok_or_else(|| Error::config("no UserInfo endpoint is configured (userinfo_url)"))?;
    let endpoint = config.endpoint();
    let send = async {
        let request = endpoint
            .http()
            .get(url.clone())
            .timeout(endpoint.timeout())
            .header(reqwest::header::ACCEPT, "application/json, application/jwt")
            .build()
            .map_err(Error::transport)?;
        // The token goes to the UserInfo endpoint's origin only.
        let origins = Origins {
            origins: vec![Allowed::of(url)],
            any_https: false,
        };
        // The endpoint's client may be the caller's, with its own redirect policy.
        let http = Reqwest {
            http: endpoint.http().clone(),
            may_redirect: true,
        };
        let response = authorize::send((http, &origins, source), request).await?;
        let raw = read_raw(response).await?;
        Ok((raw.status, raw))
    };
    let raw = observed(Call::UserInfo.label(None), url, send).await?;
    let (claims, signed) = read(config, jwks, raw).await?;
    let found = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Error::UserInfo(UserInfoError::Malformed)),
    };
    // Core §5.3.2: an exact match; "the UserInfo Response values MUST NOT be used" otherwise.
    if !bool::from(found.as_bytes().ct_eq(sub.as_bytes())) {
        tracing::warn!("the UserInfo answer is about another subject; refused");
        return Err(Error::UserInfo(UserInfoError::SubjectMismatch));
    }
    Ok(UserInfo {
        sub: found,
        claims,
        signed,
    })
}

/// The claims of an answer: a JSON object, or a signed JWT (`application/jwt`) verified with
/// the provider's keys and carrying the issuer as `iss` and this client in `aud`.
async fn read(
    config: &OAuthConfig,
    jwks: &Jwks,
    raw: RawAnswer,
) -> Result<(Map<String, Value>, bool), Error> {
    if !(200..300).contains(&raw.status) {
        return Err(refusal(&raw));
    }
    let media_type = raw.content_type.split(';').next().unwrap_or("").trim();
    let body = raw.body.trim_ascii();
    let looks_like_json = body.first() == Some(&b'{');
    if media_type != "application/jwt" && looks_like_json {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(claims)) => Ok((claims, false)),
            _ => Err(Error::UserInfo(UserInfoError::Malformed)),
        };
    }
    let jwt = std::str::from_utf8(body).map_err(|_| Error::UserInfo(UserInfoError::Malformed))?;
    match jwt.split('.').count() {
        3 => {}
        5 => return Err(Error::UserInfo(UserInfoError::Encrypted)),
        _ => return Err(Error::UserInfo(UserInfoError::Malformed)),
    }
    let claims = id_token::verify_signed(config, jwks, jwt)
        .await
        .map_err(|e| match e {
            IdTokenError::Malformed => Error::UserInfo(UserInfoError::Malformed),
            other => Error::UserInfo(UserInfoError::Signature(other)),
        })?;
    // Core §5.3.2: a signed answer names the issuer and this client.
    let issuer = config.endpoints().issuer.as_deref();
    if issuer.is_none() || claims.get("iss").and_then(Value::as_str) != issuer {
        return Err(Error::UserInfo(UserInfoError::Issuer));
    }
    let client_id = config.client_id();
    let names_client = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !names_client {
        return Err(Error::UserInfo(UserInfoError::Audience));
    }
    Ok((claims, true))
}

/// A non-2xx answer that the request rules did not handle (a 401 they did): the provider's
/// OAuth error from the body, else from its `WWW-Authenticate` challenge (a 403
/// `insufficient_scope` often has no body), else a malformed answer.
fn refusal(raw: &RawAnswer) -> Error {
    let from_body = answer_from_body(raw.status, &raw.content_type, &raw.body, &[]);
    match (from_body, &raw.challenge) {
        (Err(e), _) if e.oauth_error().is_some() => e,
        (_, Some(c)) if c.error.as_deref().is_some_and(|e| e != "-") => Error::from_oauth(
            OAuthError::new(c.error.as_deref().unwrap_or_default())
                .with_description(c.description.as_deref())
                .with_status(Some(raw.status)),
        ),
        (Err(e), _) => e,
        (Ok(_), _) => Error::malformed(raw.status, "the UserInfo endpoint refused the request"),
    }
}

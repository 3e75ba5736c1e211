//! The in-process provider's checks of JWT assertions, done for real so that tests prove
//! interop rather than shape: `private_key_jwt` and `client_secret_jwt` client assertions
//! (RFC 7523 §2.2), the JWT bearer grant (§2.1, with Google's `target_audience` ID tokens),
//! and the token exchange grant (RFC 8693).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::client_registry::{
    ACCESS_TOKEN_TYPE, CLIENT_ASSERTION_TYPE, JWT_BEARER, TOKEN_EXCHANGE,
};
use super::http::oauth_error;
use super::state::{Inner, TestProvider};
use crate::clock::Clock;

impl TestProvider {
    /// Registers `client_id` as a `private_key_jwt` client (and JWT bearer grant issuer, such
    /// as a service account's `client_email`) whose assertions `public_jwk` verifies: a
    /// public JWK ([`SigningKey::public_jwk`](crate::SigningKey::public_jwk)) or a JWKS
    /// (`{"keys": [...]}`). May be called again to add keys.
    ///
    /// Assertions are checked for real: the signature (with a key whose `kid` matches when
    /// both have one), `aud` (the issuer, the token endpoint, or the endpoint called), `exp`
    /// (in the future, at most an hour ahead), `iat` (not ahead), `iss = sub = client_id`,
    /// and a `jti` not seen before: a replayed assertion gets `invalid_client`. Times are
    /// read from [`set_clock`](Self::set_clock)'s clock.
    ///
    /// # Panics
    ///
    /// When `public_jwk` is not a JWK or JWKS.
    pub fn register_client_key(&self, client_id: &str, public_jwk: impl serde::Serialize) {
        let public_jwk = serde_json::to_value(public_jwk).expect("a JWK is JSON");
        self.with(|i| i.assertions.register_key(client_id, public_jwk));
    }

    /// Registers a confidential client with this secret, accepted through
    /// `client_secret_basic`, `client_secret_post` and `client_secret_jwt` (HS256, HS384,
    /// HS512). [`CLIENT_ID`](Self::CLIENT_ID) is registered with
    /// [`CLIENT_SECRET`](Self::CLIENT_SECRET).
    pub fn register_client_secret(&self, client_id: &str, secret: &str) {
        self.with(|i| i.assertions.register_secret(client_id, secret));
    }

    /// The clock assertions' `exp` and `iat` are checked against. Default the system clock;
    /// pass the client's [`ManualClock`](super::clock::ManualClock) when the test moves it.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        self.with(|i| i.assertions.set_clock(clock));
    }

    /// The `token_type` of token exchange answers. Default `Bearer`; RFC 8693 §2.2.1 allows
    /// `N_A` for tokens that are not access tokens.
    pub fn set_token_exchange_token_type(&self, token_type: &str) {
        self.with(|i| i.assertions.set_exchange_token_type(token_type));
    }

    /// The claims of every assertion the provider accepted (client assertions and JWT bearer
    /// grants), in order.
    pub fn accepted_assertions(&self) -> Vec<Map<String, Value>> {
        self.with(|i| i.assertions.accepted())
    }
}

pub(super) fn invalid_client(why: &str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
}

/// The audiences the provider answers to: its issuer, its token endpoint, and the endpoint
/// called (as oidc-provider does).
pub(super) fn audiences(inner: &Inner, path: &str) -> Vec<String> {
    vec![
        inner.issuer.clone(),
        format!("{}/token", inner.issuer),
        format!("{}{path}", inner.issuer),
    ]
}

/// The client a `client_assertion` authenticates, or `None` when the form has none.
#[allow(clippy::result_large_err)] // a test server: the error is the response
pub(super) fn client(
    inner: &mut Inner,
    form: &HashMap<String, String>,
    path: &str,
) -> Option<Result<String, Response>> {
    let assertion = form.get("client_assertion")?;
    if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
        return Some(Err(invalid_client("unsupported client_assertion_type")));
    }
    let audiences = audiences(inner, path);
    Some(match inner.assertions.verify(assertion, &audiences) {
        Ok(claims) => {
            let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
            let sub = claims.get("sub").and_then(Value::as_str);
            let named = form.get("client_id").map(String::as_str);
            if sub != Some(iss) || named.is_some_and(|id| id != iss) {
                Err(invalid_client("iss, sub and client_id differ"))
            } else {
                Ok(iss.to_owned())
            }
        }
        Err(why) => Err(invalid_client(&why)),
    })
}

/// A grant request that needs no client authentication: the JWT bearer grant (whose
/// assertion authenticates) and the token exchange (a security token service's).
pub(super) fn anonymous_grant(form: &HashMap<String, String>) -> bool {
    matches!(
        form.get("grant_type").map(String::as_str),
        Some(JWT_BEARER | TOKEN_EXCHANGE)
    )
}

/// What the response of a JWT bearer or token exchange grant carries besides the token.
pub(super) struct Extra {
    pub(super) scope: Option<String>,
    pub(super) target_audience: Option<String>,
    pub(super) subject: String,
    pub(super) issued_token_type: Option<String>,
}

/// The checks of a JWT bearer or token exchange grant request, or `None` for other grants.
pub(super) fn grant(
    inner: &mut Inner,
    form: &HashMap<String, String>,
) -> Option<Result<Extra, Response>> {
    match form.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER) => Some(jwt_bearer(inner, form)),
        Some(TOKEN_EXCHANGE) => Some(token_exchange(form)),
        _ => None,
    }
}

/// Checks a JWT bearer grant (RFC 7523 §2.1): the assertion, by a registered key, for this
/// provider's token endpoint.
#[allow(clippy::result_large_err)] // as `client`
pub(super) fn jwt_bearer(
    inner: &mut Inner,
    form: &HashMap<String, String>,
) -> Result<Extra, Response> {
    let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
    let audiences = audiences(inner, "/token");
    let claims = inner
        .assertions
        .verify(assertion, &audiences)
        .map_err(|why| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &why))?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let subject = text("sub").or_else(|| text("iss")).unwrap_or_default();
    Ok(Extra {
        scope: text("scope").or_else(|| form.get("scope").cloned()),
        target_audience: text("target_audience"),
        subject,
        issued_token_type: None,
    })
}

/// Checks a token exchange (RFC 8693 §2.1): a subject token and its type, an actor token
/// only with its type.
#[allow(clippy::result_large_err)] // as `client`
pub(super) fn token_exchange(form: &HashMap<String, String>) -> Result<Extra, Response> {
    let field = |k: &str| form.get(k).filter(|v| !v.is_empty());
    let (Some(subject), Some(_)) = (field("subject_token"), field("subject_token_type")) else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "subject_token and subject_token_type are required",
        ));
    };
    if field("actor_token").is_some() != field("actor_token_type").is_some() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "actor_token and actor_token_type go together",
        ));
    }
    Ok(Extra {
        scope: form.get("scope").cloned(),
        target_audience: None,
        subject: subject.clone(),
        issued_token_type: Some(
            field("requested_token_type")
                .cloned()
                .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned()),
        ),
    })
}

/// Adjusts a grant's token response: a Google-style `{"id_token"}` answer for a JWT bearer
/// grant with `target_audience`, `issued_token_type` for a token exchange.
pub(super) fn finish(inner: &Inner, extra: &Extra, access: &str, response: &mut Value) {
    if extra.target_audience.is_some() {
        *response = json!({ "id_token": access });
        return;
    }
    if let Some(issued) = &extra.issued_token_type {
        response["issued_token_type"] = json!(issued);
        response["token_type"] = json!(inner.assertions.exchange_token_type);
    }
    if let Some(scope) = &extra.scope {
        response["scope"] = json!(scope);
    }
}

/// The token a grant with `extra` issues: an ID token for a `target_audience` (signed by the
/// provider's key, `aud` the audience), else an opaque access token.
pub(super) fn issue(inner: &Inner, extra: &Extra, lifetime: Duration) -> String {
    let Some(audience) = &extra.target_audience else {
        return super::http::random_token("at-");
    };
    let key = super::id_token::signing_key(inner);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = json!({
        "iss": inner.issuer,
        "sub": extra.subject,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime.as_secs(),
        "jti": super::http::random_token(""),
    });
    super::id_token::sign_with(&key, &claims)
}

//! The in-process provider's UserInfo endpoint (OpenID Connect Core §5.3): a user's claims
//! for a user's access token (Bearer, or DPoP with a valid proof), as JSON or as a JWT
//! signed like its ID tokens.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::dpop;
use super::id_token::sign;
use super::state::{IdTokenForgery, ProviderState, TestProvider};

impl TestProvider {
    /// The UserInfo endpoint (`userinfo_endpoint` in the metadata): for an unexpired user
    /// token (from a sign-in, a device flow or a refresh; Bearer, or DPoP with a valid proof
    /// by its key) it answers the standard claims of the user the token was issued for:
    /// `sub`, `name`, `given_name`, `family_name`, `preferred_username`, `email`,
    /// `email_verified`, `phone_number`, `phone_number_verified`, `address`, `locale`,
    /// `zoneinfo` and `updated_at` (whatever the scopes). Any other token gets `401
    /// invalid_token`.
    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.base_url())
    }

    /// Answers UserInfo requests with a JWT (`application/jwt`, OpenID Connect Core §5.3.2)
    /// signed like the ID tokens (same key, same [forgeries](Self::set_id_token_forgery):
    /// a bad signature, an unknown key, `alg: none`, another issuer or audience), carrying
    /// `iss` and `aud` (the client). Default off: JSON.
    pub fn set_userinfo_signed(&self, on: bool) {
        self.with(|i| i.oidc.userinfo_signed = on);
    }

    /// Answers UserInfo requests about this `sub` instead of the token's user, as a provider
    /// mixing up users would: the client must refuse the answer. `None` (the default) answers
    /// truthfully.
    pub fn set_userinfo_subject(&self, sub: Option<&str>) {
        self.with(|i| i.oidc.userinfo_subject = sub.map(str::to_owned));
    }

    /// How many requests the UserInfo endpoint received.
    pub fn userinfo_requests(&self) -> usize {
        self.with(|i| i.oidc.userinfo_requests)
    }
}

/// The standard claims of the test user `sub`.
fn claims_of(sub: &str) -> Value {
    json!({
        "sub": sub,
        "name": format!("Test User {sub}"),
        "given_name": "Test",
        "family_name": format!("User {sub}"),
        "preferred_username": sub,
        "email": format!("{sub}@example.com"),
        "email_verified": true,
        "phone_number": "+1 555 0100",
        "phone_number_verified": false,
        "address": {
            "formatted": "1 Example Street\n75001 Paris\nFrance",
            "street_address": "1 Example Street",
            "locality": "Paris",
            "postal_code": "75001",
            "country": "France",
        },
        "locale": "en-US",
        "zoneinfo": "Europe/Paris",
        "updated_at": 1_700_000_000,
    })
}

pub(super) async fn userinfo_endpoint(
    State(state): State<Arc<ProviderState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut inner = state.lock();
    inner.oidc.userinfo_requests += 1;
    let presented = match dpop::presented_token(&mut inner, &headers, method.as_str(), "/userinfo")
    {
        Ok(presented) => presented,
        Err(resp) => return resp,
    };
    let issued = presented.and_then(|t| inner.access.get(&t).cloned());
    let Some((issued, subject)) = issued
        .filter(|i| i.expires > Instant::now())
        .and_then(|i| i.subject.clone().map(|s| (i, s)))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\", error_description=\"not a valid user access token\"",
            )],
            "unauthorized",
        )
            .into_response();
    };
    let sub = inner.oidc.userinfo_subject.clone().unwrap_or(subject);
    let mut claims = claims_of(&sub);
    if !inner.oidc.userinfo_signed {
        return axum::Json(claims).into_response();
    }
    claims["iss"] = json!(inner.issuer);
    claims["aud"] = json!(issued.client_id);
    match inner.id_token_forgery {
        Some(IdTokenForgery::WrongIssuer) => claims["iss"] = json!(format!("{}/", inner.issuer)),
        Some(IdTokenForgery::WrongAudience) => claims["aud"] = json!("another-client"),
        _ => {}
    }
    (
        [(header::CONTENT_TYPE, "application/jwt")],
        sign(&inner, &claims),
    )
        .into_response()
}

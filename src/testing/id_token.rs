//! The in-process provider's ID tokens (good and forged) and its JWKS.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::state::{CodeGrant, IdTokenForgery, Inner, ProviderState};
use crate::jose::jws::sign_jwt_with;
use crate::jose::{HmacAlgorithm, SigningAlgorithm, SigningKey};

/// The signing key in use: its algorithm and `kid` set.
pub(super) fn signing_key(inner: &Inner) -> SigningKey {
    let alg = inner.id_token_alg;
    let keys = &inner.keys;
    let key = match alg {
        SigningAlgorithm::EdDSA if inner.rotated => &keys.ed2,
        SigningAlgorithm::EdDSA => &keys.ed,
        SigningAlgorithm::ES256 => &keys.ec,
        _ => keys.rsa(),
    };
    let kid = format!("{alg:?}-{}", if inner.rotated { 2 } else { 1 });
    key.clone()
        .with_algorithm(alg)
        .expect("each key signs its algorithms")
        .with_kid(kid)
}

/// A JWT of `claims` signed by `key` under its `alg` and `kid`.
pub(super) fn sign_with(key: &SigningKey, claims: &Value) -> String {
    let mut header = json!({"typ": "JWT", "alg": key.algorithm().as_str()});
    if let Some(kid) = key.kid() {
        header["kid"] = json!(kid);
    }
    sign_jwt_with(&header, claims, |input| key.sign_now(input)).expect("signs")
}

/// The public JWK of the key in use.
pub(super) fn public_jwk(inner: &Inner) -> Value {
    signing_key(inner).public_jwk().to_value()
}

/// An ID token for `grant`, signed by the key in use, or forged as told.
pub(super) fn id_token(inner: &Inner, grant: &CodeGrant) -> Option<String> {
    let forgery = inner.id_token_forgery;
    if forgery == Some(IdTokenForgery::Missing) {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = json!({
        "iss": inner.issuer,
        "sub": grant.subject,
        "aud": grant.client_id,
        "exp": now + 600,
        "iat": now,
        "email": format!("{}@example.com", grant.subject),
        "name": format!("Test User {}", grant.subject),
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(acr) = &grant.acr {
        claims["acr"] = json!(acr);
    }
    claims["auth_time"] = json!(grant.auth_time);
    match forgery {
        Some(IdTokenForgery::WrongIssuer) => claims["iss"] = json!(format!("{}/", inner.issuer)),
        Some(IdTokenForgery::WrongAudience) => claims["aud"] = json!("another-client"),
        Some(IdTokenForgery::MultipleAudiencesWithoutAzp) => {
            claims["aud"] = json!([grant.client_id, "another-client"]);
        }
        Some(IdTokenForgery::WrongAzp) => claims["azp"] = json!("another-client"),
        Some(IdTokenForgery::Expired) => claims["exp"] = json!(now - 120),
        Some(IdTokenForgery::IssuedInFuture) => claims["iat"] = json!(now + 120),
        Some(IdTokenForgery::WrongNonce) => claims["nonce"] = json!("not-the-nonce"),
        Some(IdTokenForgery::NoNonce) => {
            claims.as_object_mut().map(|c| c.remove("nonce"));
        }
        _ => {}
    }
    Some(sign(inner, &claims))
}

/// `claims` signed by the key in use, or forged as [`IdTokenForgery`] says (the forgeries of
/// the signature; those of the claims are the caller's): ID tokens and signed UserInfo.
pub(super) fn sign(inner: &Inner, claims: &serde_json::Value) -> String {
    let forgery = inner.id_token_forgery;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let key = signing_key(inner);
    let kid = key.kid().unwrap_or_default().to_owned();
    match forgery {
        Some(IdTokenForgery::AlgNone) => {
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid})),
                b64(claims)
            )
        }
        Some(IdTokenForgery::HmacWithPublicKey) => {
            let secret = public_jwk(inner).to_string();
            let header = json!({"typ": "JWT", "alg": "HS256", "kid": kid});
            sign_jwt_with(&header, claims, |input| {
                Ok(crate::jose::hmac(
                    HmacAlgorithm::HS256,
                    secret.as_bytes(),
                    input,
                ))
            })
            .expect("signs")
        }
        Some(IdTokenForgery::WrongSignature | IdTokenForgery::UnknownKey) => {
            let kid = if forgery == Some(IdTokenForgery::UnknownKey) {
                "unpublished".to_owned()
            } else {
                format!("{:?}-1", SigningAlgorithm::EdDSA)
            };
            // A key the JWKS never lists (the rotation key, while not rotated).
            let other = if inner.rotated {
                &inner.keys.ed
            } else {
                &inner.keys.ed2
            };
            sign_with(&other.clone().with_kid(kid), claims)
        }
        _ => sign_with(&key, claims),
    }
}

pub(super) async fn jwks_endpoint(State(state): State<Arc<ProviderState>>) -> Response {
    let mut inner = state.lock();
    inner.jwks_requests += 1;
    let jwks = match &inner.jwks_override {
        Some(jwks) => jwks.clone(),
        None => json!({ "keys": [public_jwk(&inner)] }),
    };
    axum::Json(jwks).into_response()
}

//! The in-process provider's ID tokens (good and forged) and its JWKS.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::keys;
use super::state::{CodeGrant, IdTokenForgery, Inner, ProviderState};

/// The signing key in use, its algorithm and `kid`.
pub(super) fn signing_key(
    inner: &Inner,
) -> (jsonwebtoken::EncodingKey, jsonwebtoken::Algorithm, String) {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let alg = inner.id_token_alg;
    let key = match alg {
        Algorithm::EdDSA if inner.rotated => EncodingKey::from_ed_pem(keys::ED2_PEM.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(keys::ED_PEM.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(keys::EC_PEM.as_bytes()),
        _ => EncodingKey::from_rsa_pem(keys::RSA_PEM.as_bytes()),
    }
    .expect("the test keys parse");
    let kid = format!("{alg:?}-{}", if inner.rotated { 2 } else { 1 });
    (key, alg, kid)
}

/// The public JWK of the key in use.
pub(super) fn public_jwk(inner: &Inner) -> serde_json::Value {
    crate::jose::install_crypto_provider();
    let (key, alg, kid) = signing_key(inner);
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).expect("a public JWK");
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    serde_json::to_value(jwk).expect("a JWK serializes")
}

/// An ID token for `grant`, signed by the key in use, or forged as told.
pub(super) fn id_token(inner: &Inner, grant: &CodeGrant) -> Option<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    crate::jose::install_crypto_provider();
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
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let (key, alg, kid) = signing_key(inner);
    let mut header = Header::new(alg);
    header.kid = Some(kid.clone());
    let token = match forgery {
        Some(IdTokenForgery::AlgNone) => {
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid})),
                b64(&claims)
            )
        }
        Some(IdTokenForgery::HmacWithPublicKey) => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid);
            let secret = public_jwk(inner).to_string();
            let key = EncodingKey::from_secret(secret.as_bytes()).expect("an HMAC key");
            jsonwebtoken::encode(&header, &claims, &key).expect("signs")
        }
        Some(IdTokenForgery::WrongSignature | IdTokenForgery::UnknownKey) => {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(if forgery == Some(IdTokenForgery::UnknownKey) {
                "unpublished".to_owned()
            } else {
                format!("{:?}-1", Algorithm::EdDSA)
            });
            // A key the JWKS never lists (the rotation key, while not rotated).
            let pem = if inner.rotated {
                keys::ED_PEM
            } else {
                keys::ED2_PEM
            };
            let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("the test key parses");
            jsonwebtoken::encode(&header, &claims, &key).expect("signs")
        }
        _ => jsonwebtoken::encode(&header, &claims, &key).expect("signs"),
    };
    Some(token)
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

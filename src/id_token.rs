//! ID token validation for OpenID Connect sign-ins (OpenID Connect Core §3.1.3.7).
//!
//! The JOSE work (JWK parsing, signature verification) is `jsonwebtoken` with its pure-Rust
//! `rust_crypto` backend; the claim rules are ours, so they use the crate's injectable clock.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::config::OAuthConfig;
use crate::error::{Error, IdTokenError};

/// Clock difference tolerated between the provider and this machine for `exp` and `iat`.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A JWKS is fetched again for an unknown `kid` (key rotation) only when the copy held is at
/// least this old, so forged `kid`s cannot make the crate hammer the provider.
pub(crate) const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The claims of an ID token that passed validation: who signed in.
///
/// `Debug` shows only the subject.
#[derive(Clone, PartialEq)]
pub struct IdTokenClaims {
    sub: String,
    claims: Map<String, Value>,
}

impl IdTokenClaims {
    /// `sub`: the user's identifier at the provider, stable and unique within the issuer.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `email`, when the provider sent it (ask for the `email` scope).
    pub fn email(&self) -> Option<&str> {
        self.claims.get("email").and_then(Value::as_str)
    }

    /// `name`, when the provider sent it (ask for the `profile` scope).
    pub fn name(&self) -> Option<&str> {
        self.claims.get("name").and_then(Value::as_str)
    }

    /// One claim by name, as JSON.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.claims.get(claim)
    }

    /// Every claim of the token, as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

impl std::fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenClaims")
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// The provider's keys, fetched on first use and again (rate-limited) on an unknown `kid`.
#[derive(Default)]
pub(crate) struct Jwks {
    state: tokio::sync::Mutex<Option<Fetched>>,
}

struct Fetched {
    keys: Vec<Jwk>,
    at: SystemTime,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwks")
    }
}

/// `jsonwebtoken` panics when it cannot tell which backend to use (both features on, from
/// another crate in the graph); naming ours first makes that impossible.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

const ALLOWED: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("PS256", Algorithm::PS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
];

fn b64_json(part: &str) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)
}

/// `true` when `jwk` may verify `alg` signatures: the right key type and curve, and its `use`
/// and `alg`, when given, agree.
fn usable(jwk: &Jwk, alg: Algorithm) -> bool {
    let family_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    let use_ok = !matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature);
    let alg_ok = jwk.common.key_algorithm.is_none_or(|k| {
        matches!(
            (k, alg),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::PS256, Algorithm::PS256)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
        )
    });
    family_ok && use_ok && alg_ok
}

impl Jwks {
    async fn fetch(config: &OAuthConfig) -> Result<Vec<Jwk>, IdTokenError> {
        let url = config
            .endpoints()
            .jwks_url
            .as_ref()
            .ok_or(IdTokenError::Jwks)?;
        let answer = config
            .endpoint()
            .get_json(url)
            .await
            .map_err(|_| IdTokenError::Jwks)?;
        let keys = match answer.fields.get("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err(IdTokenError::Jwks),
        };
        // A key of a kind this crate does not know is skipped, not fatal for the others.
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect())
    }

    /// The keys that may verify a token with `kid` and `alg`, fetching the set the first
    /// time, and again when none matches and the copy held is old enough.
    async fn candidates(
        &self,
        config: &OAuthConfig,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, IdTokenError> {
        let pick = |keys: &[Jwk]| -> Vec<DecodingKey> {
            keys.iter()
                .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
                .filter(|k| usable(k, alg))
                .filter_map(|k| DecodingKey::from_jwk(k).ok())
                .collect()
        };
        let now = config.clock().now();
        let mut state = self.state.lock().await;
        if let Some(fetched) = state.as_ref() {
            let found = pick(&fetched.keys);
            let old = now
                .duration_since(fetched.at)
                .is_ok_and(|age| age >= JWKS_REFETCH_INTERVAL);
            if !found.is_empty() || !old {
                return if found.is_empty() {
                    Err(IdTokenError::UnknownKey)
                } else {
                    Ok(found)
                };
            }
        }
        let keys = Self::fetch(config).await?;
        let found = pick(&keys);
        *state = Some(Fetched { keys, at: now });
        if found.is_empty() {
            Err(IdTokenError::UnknownKey)
        } else {
            Ok(found)
        }
    }
}

/// Validates `raw` as the ID token of a sign-in that sent `nonce`, and returns its claims.
pub(crate) async fn validate(
    config: &OAuthConfig,
    jwks: &Jwks,
    raw: &str,
    nonce: &str,
) -> Result<IdTokenClaims, Error> {
    validate_inner(config, jwks, raw, nonce)
        .await
        .map_err(Error::IdToken)
}

async fn validate_inner(
    config: &OAuthConfig,
    jwks: &Jwks,
    raw: &str,
    nonce: &str,
) -> Result<IdTokenClaims, IdTokenError> {
    install_crypto_provider();
    let mut parts = raw.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let header = b64_json(header)?;
    // `none`, HMAC (which a forger would "sign" with our public key), and anything else not
    // on the list are refused before any key is looked at.
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| ALLOWED.iter().find(|(name, _)| *name == a))
        .map(|(_, alg)| *alg)
        .ok_or(IdTokenError::AlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        return Err(IdTokenError::Malformed);
    }
    let kid = header.get("kid").and_then(Value::as_str);

    let mut validation = Validation::new(alg);
    // Claims are checked below, against the crate's clock; here only the signature.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut claims = None;
    for key in jwks.candidates(config, kid, alg).await? {
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(raw, &key, &validation) {
            claims = Some(data.claims);
            break;
        }
    }
    let claims = claims.ok_or(IdTokenError::BadSignature)?;

    let issuer = config.endpoints().issuer.as_deref();
    if issuer.is_none() || claims.get("iss").and_then(Value::as_str) != issuer {
        return Err(IdTokenError::Issuer);
    }
    let client_id = config.client_id();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").map(Value::as_str);
    let audience_ok = audiences.contains(&client_id)
        && match azp {
            Some(azp) => azp == Some(client_id),
            // Several audiences: `azp` must say which one the token was issued to.
            None => audiences.len() == 1,
        };
    if !audience_ok {
        return Err(IdTokenError::Audience);
    }
    let now = config
        .clock()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let skew = CLOCK_SKEW.as_secs_f64();
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if now < exp + skew => {}
        _ => return Err(IdTokenError::Expired),
    }
    match claims.get("iat").and_then(Value::as_f64) {
        Some(iat) if iat <= now + skew => {}
        _ => return Err(IdTokenError::IssuedInFuture),
    }
    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_ok {
        return Err(IdTokenError::Nonce);
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(IdTokenError::Malformed),
    };
    Ok(IdTokenClaims { sub, claims })
}

//! ID token validation for OpenID Connect sign-ins (OpenID Connect Core §3.1.3.7).
//!
//! The JOSE work (JWK parsing, signature verification) is `jose::verify`; the claim rules and
//! the provider's key set are here, so they use the crate's injectable clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::config::OAuthConfig;
use crate::error::{Error, IdTokenError};
use crate::jose::verify::{self, JwsHeader};

/// Clock difference tolerated between the provider and this machine for `exp` and `iat`.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A JWKS is fetched again for an unknown `kid` (key rotation) only when the copy held is at
/// least this old, so forged `kid`s cannot make the crate hammer the provider.
pub(crate) const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The claims of an ID token that passed validation: who signed in, with typed getters for
/// the standard claims of OpenID Connect Core §5.1 (`email`, `name`, `address`, ...).
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

    crate::claims::standard_claims!();
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
        match answer.fields.get("keys") {
            Some(Value::Array(keys)) => Ok(verify::parse_keys(keys)),
            _ => Err(IdTokenError::Jwks),
        }
    }

    /// The keys that may verify a token with `header`'s `kid` and `alg`, fetching the set
    /// the first time, and again when none matches and the copy held is old enough.
    async fn candidates(
        &self,
        config: &OAuthConfig,
        header: &JwsHeader,
    ) -> Result<Vec<DecodingKey>, IdTokenError> {
        let pick = |keys: &[Jwk]| verify::matching_keys(keys, header);
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

/// The claims of `raw`, a JWS signed by one of the provider's keys (its JWKS, fetched again
/// on an unknown `kid` within the limit): the crate's one check of a provider's signature,
/// for ID tokens and signed UserInfo answers alike. Only the signature: claims are the
/// caller's to check.
pub(crate) async fn verify_signed(
    config: &OAuthConfig,
    jwks: &Jwks,
    raw: &str,
) -> Result<Map<String, Value>, IdTokenError> {
    let header = verify::read_header(raw)?;
    let keys = jwks.candidates(config, &header).await?;
    verify::verify_signature(raw, &header, &keys)
}

/// The `sub` of an ID token this crate validated before and stored with the login, read
/// without checking it again (its signing key may have rotated since, and it may have
/// expired): what a resumed login knows of who signed in.
pub(crate) fn stored_subject(raw: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = raw.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    match claims.get("sub")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
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
    let claims = verify_signed(config, jwks, raw).await?;
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

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
    let header = verify::read_header(raw)?;
    let keys = jwks.candidates(config, &header).await?;
    let claims = verify::verify_signature(raw, &header, &keys)?;

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

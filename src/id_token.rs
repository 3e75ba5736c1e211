//! ID token validation for OpenID Connect sign-ins (OpenID Connect Core §3.1.3.7).
//!
//! The JOSE work (JWK checks, signature verification, the registered claims) is
//! `jose::verify`, the verifier JARM responses use too; the provider's key set (fetched and
//! refetched through the endpoint client) and the ID token's own rules (`azp`, `nonce`, `sub`)
//! are here.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::config::OAuthConfig;
use crate::error::{Error, IdTokenError};
use crate::jose::PublicJwk;
use crate::jose::verify::{self, Expected, JwsHeader, JwtError, KeySet};

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

/// The provider's keys, fetched on first use and again (rate-limited) on an unknown `kid`:
/// what verifies everything the provider signs (ID tokens, JARM responses).
#[derive(Default)]
pub(crate) struct Jwks {
    state: tokio::sync::Mutex<Option<Fetched>>,
}

struct Fetched {
    keys: KeySet,
    at: SystemTime,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwks")
    }
}

impl Jwks {
    async fn fetch(config: &OAuthConfig) -> Result<KeySet, JwtError> {
        let url = config.endpoints().jwks_url.as_ref().ok_or(JwtError::Jwks)?;
        let answer = config
            .endpoint()
            .get_json(url)
            .await
            .map_err(|_| JwtError::Jwks)?;
        KeySet::from_document(&answer.fields)
    }

    /// The keys that may verify a token with `header`'s `kid` and `alg`, fetching the set
    /// the first time, and again when none matches and the copy held is old enough.
    async fn candidates(
        &self,
        config: &OAuthConfig,
        header: &JwsHeader,
    ) -> Result<Vec<PublicJwk>, JwtError> {
        let pick = |keys: &KeySet| -> Vec<PublicJwk> {
            keys.candidates(header).into_iter().cloned().collect()
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
                    Err(JwtError::UnknownKey)
                } else {
                    Ok(found)
                };
            }
        }
        let keys = Self::fetch(config).await?;
        let found = pick(&keys);
        *state = Some(Fetched { keys, at: now });
        if found.is_empty() {
            Err(JwtError::UnknownKey)
        } else {
            Ok(found)
        }
    }

    /// Verifies `raw`, a JWT the provider signed, against its key set (fetched as needed) and
    /// `expected`: the allowed algorithms, `iss`, `aud`, `exp` / `nbf` / `iat` with skew. The
    /// claims, once they may be trusted. ID tokens come through here; so should JARM
    /// responses (`Expected { require_iat: false, audience: client_id, .. }`).
    pub(crate) async fn verify(
        &self,
        config: &OAuthConfig,
        raw: &str,
        expected: &Expected<'_>,
    ) -> Result<Map<String, Value>, JwtError> {
        let header = verify::read_header(raw, expected.algorithms)?;
        let keys = self.candidates(config, &header).await?;
        let keys: Vec<&PublicJwk> = keys.iter().collect();
        let claims = verify::verify_signature(raw, &header, &keys)?;
        verify::check_claims(&claims, expected)?;
        Ok(claims)
    }
}

impl From<JwtError> for IdTokenError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Malformed | JwtError::Encrypted => IdTokenError::Malformed,
            JwtError::AlgorithmNotAllowed => IdTokenError::AlgorithmNotAllowed,
            JwtError::UnknownKey => IdTokenError::UnknownKey,
            JwtError::BadSignature => IdTokenError::BadSignature,
            JwtError::Issuer => IdTokenError::Issuer,
            JwtError::Audience => IdTokenError::Audience,
            JwtError::Expired => IdTokenError::Expired,
            JwtError::NotYetValid => IdTokenError::NotYetValid,
            JwtError::IssuedInFuture => IdTokenError::IssuedInFuture,
            JwtError::Jwks => IdTokenError::Jwks,
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
    let header = verify::read_header(raw, verify::DEFAULT_ALGORITHMS)?;
    let keys = jwks.candidates(config, &header).await?;
    let keys: Vec<&PublicJwk> = keys.iter().collect();
    Ok(verify::verify_signature(raw, &header, &keys)?)
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
    let issuer = config
        .endpoints()
        .issuer
        .as_deref()
        .ok_or(IdTokenError::Issuer)?;
    let expected = expected(issuer, config.client_id(), config.clock().now());
    let claims = jwks.verify(config, raw, &expected).await?;
    id_token_claims(claims, config.client_id(), nonce)
}

/// What an ID token's registered claims must say (OpenID Connect Core §3.1.3.7).
fn expected<'a>(issuer: &'a str, client_id: &'a str, now: SystemTime) -> Expected<'a> {
    Expected {
        algorithms: verify::DEFAULT_ALGORITHMS,
        issuer,
        audience: client_id,
        now,
        skew: CLOCK_SKEW,
        require_iat: true,
    }
}

/// [`validate`] against a key set in hand: the same checks, for the fuzz target.
#[cfg(feature = "testing")]
pub(crate) fn validate_offline(
    raw: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: SystemTime,
) -> Result<IdTokenClaims, IdTokenError> {
    let claims = verify::verify(raw, keys, &expected(issuer, client_id, now))?;
    id_token_claims(claims, client_id, nonce)
}

/// The rules of an ID token beyond the registered claims (OpenID Connect Core §3.1.3.7):
/// `azp`, `nonce` and `sub`, on claims whose signature, `iss`, `aud` and times are checked.
pub(crate) fn id_token_claims(
    claims: Map<String, Value>,
    client_id: &str,
    nonce: &str,
) -> Result<IdTokenClaims, IdTokenError> {
    let audiences = match claims.get("aud") {
        Some(Value::Array(a)) => a.len(),
        _ => 1,
    };
    let azp_ok = match claims.get("azp") {
        Some(azp) => azp.as_str() == Some(client_id),
        // Several audiences: `azp` must say which one the token was issued to.
        None => audiences == 1,
    };
    if !azp_ok {
        return Err(IdTokenError::Audience);
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

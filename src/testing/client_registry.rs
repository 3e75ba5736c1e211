//! The clients the in-process provider knows (their keys and secrets), the assertion `jti`s
//! it has seen, and the checks of one assertion: the data under the assertion grants.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::clock::Clock;

pub(super) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub(super) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

pub(super) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Tolerated clock difference for `iat` and `exp`.
pub(super) const SKEW: u64 = 30;

/// Assertions valid for longer than this are refused (Google: one hour).
pub(super) const MAX_LIFETIME: u64 = 3600;

/// Registered keys and secrets, and the `jti`s already used.
#[derive(Debug)]
pub(super) struct Assertions {
    pub(super) keys: HashMap<String, Vec<Jwk>>,
    pub(super) secrets: HashMap<String, String>,
    /// `jti` → `exp`: a `jti` is remembered until its assertion expires.
    pub(super) seen: HashMap<String, u64>,
    pub(super) clock: Arc<dyn Clock>,
    /// Claims of every assertion accepted, in order.
    pub(super) accepted: Vec<Map<String, Value>>,
    /// The `token_type` of token exchange answers.
    pub(super) exchange_token_type: String,
}

impl Assertions {
    pub(super) fn register_key(&mut self, client_id: &str, jwk: Value) {
        let keys: Vec<Jwk> = match jwk.get("keys") {
            Some(keys) => serde_json::from_value(keys.clone()).expect("a JWKS"),
            None => vec![serde_json::from_value(jwk).expect("a public JWK")],
        };
        self.keys
            .entry(client_id.to_owned())
            .or_default()
            .extend(keys);
    }

    pub(super) fn register_secret(&mut self, client_id: &str, secret: &str) {
        self.secrets.insert(client_id.to_owned(), secret.to_owned());
    }

    pub(super) fn secret_matches(&self, client_id: &str, secret: &str) -> bool {
        self.secrets.get(client_id).is_some_and(|s| s == secret)
    }

    pub(super) fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    pub(super) fn set_exchange_token_type(&mut self, token_type: &str) {
        self.exchange_token_type = token_type.to_owned();
    }

    pub(super) fn accepted(&self) -> Vec<Map<String, Value>> {
        self.accepted.clone()
    }

    pub(super) fn now(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

    /// Verifies `jwt`: signature by a key (or secret) registered for its `iss`, `aud` one of
    /// `audiences`, `exp` in the future and not too far, `iat` not ahead, a fresh `jti`.
    /// Returns its claims.
    pub(super) fn verify(
        &mut self,
        jwt: &str,
        audiences: &[String],
    ) -> Result<Map<String, Value>, String> {
        crate::jose::install_crypto_provider();
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "not a JWT".to_owned())?;
        let payload = jwt.split('.').nth(1).ok_or("not a JWT")?;
        let unverified: Map<String, Value> = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("the payload is not JSON")?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or("no iss")?
            .to_owned();
        let candidates: Vec<DecodingKey> = match header.alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => self
                .secrets
                .get(&iss)
                .and_then(|s| DecodingKey::from_secret(s.as_bytes()).ok())
                .into_iter()
                .collect(),
            _ => self
                .keys
                .get(&iss)
                .into_iter()
                .flatten()
                .filter(|k| {
                    header.kid.is_none()
                        || k.common.key_id.is_none()
                        || k.common.key_id == header.kid
                })
                .filter_map(|k| DecodingKey::from_jwk(k).ok())
                .collect(),
        };
        if candidates.is_empty() {
            return Err(format!(
                "no key registered for iss {iss} (kid {:?})",
                header.kid
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = candidates
            .iter()
            .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(jwt, key, &validation).ok())
            .ok_or("bad signature")?
            .claims;
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.iter().any(|x| x == a),
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
            _ => false,
        };
        if !aud_ok {
            return Err("aud is not this provider".into());
        }
        let now = self.now();
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or("no exp")?;
        if exp + SKEW <= now {
            return Err("the assertion expired".into());
        }
        if exp > now + MAX_LIFETIME + SKEW {
            return Err("the assertion lives too long".into());
        }
        if claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > now + SKEW)
        {
            return Err("iat is in the future".into());
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .ok_or("no jti")?
            .to_owned();
        self.seen.retain(|_, exp| *exp + SKEW > now);
        if self.seen.insert(jti, exp).is_some() {
            return Err("jti already used: a replayed assertion".into());
        }
        self.accepted.push(claims.clone());
        Ok(claims)
    }
}

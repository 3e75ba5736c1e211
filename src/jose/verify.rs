//! Verifying a JWS (RFC 7515) against a set of public JWKs: the algorithms we accept, which
//! key may verify which algorithm, and the signature check. ID tokens use it; the claim rules
//! are `id_token.rs`'s.

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::install_crypto_provider;
use crate::error::IdTokenError;

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

/// The parts of a JWS header that pick the verifying key.
#[derive(Debug)]
pub(crate) struct JwsHeader {
    alg: Algorithm,
    kid: Option<String>,
}

/// Reads a compact JWS's header: `none`, HMAC (which a forger would "sign" with our public
/// key), and anything else not on the list are refused before any key is looked at.
pub(crate) fn read_header(raw: &str) -> Result<JwsHeader, IdTokenError> {
    let mut parts = raw.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let header = b64_json(header)?;
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
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(JwsHeader { alg, kid })
}

/// The JWKs of a JWKS's `keys` array; a key of a kind this crate does not know is skipped,
/// not fatal for the others.
pub(crate) fn parse_keys(keys: &[Value]) -> Vec<Jwk> {
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .collect()
}

/// The keys of `keys` that may verify a token with `header`'s `kid` and `alg`.
pub(crate) fn matching_keys(keys: &[Jwk], header: &JwsHeader) -> Vec<DecodingKey> {
    let kid = header.kid.as_deref();
    keys.iter()
        .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
        .filter(|k| usable(k, header.alg))
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .collect()
}

/// The claims of `raw` when one of `keys` verifies its signature. Only the signature:
/// the claims are checked by the caller, against the crate's clock.
pub(crate) fn verify_signature(
    raw: &str,
    header: &JwsHeader,
    keys: &[DecodingKey],
) -> Result<Map<String, Value>, IdTokenError> {
    install_crypto_provider();
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    keys.iter()
        .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(raw, key, &validation).ok())
        .map(|data| data.claims)
        .ok_or(IdTokenError::BadSignature)
}

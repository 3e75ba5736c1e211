//! The one verifier: a compact JWS (RFC 7515 §7.1) against a provider's key set, with the
//! algorithms the caller allows, then the registered claims every signed answer shares
//! (`iss`, `aud`, `exp`, `nbf`, `iat`, with clock skew). ID tokens use it (`id_token.rs` adds
//! `azp` and `nonce`), and so do JWT-secured authorization responses (JARM).
//!
//! ```text
//! let keys = KeySet::from_document(&jwks_json)?;          // every JWK checked, bad ones skipped
//! let claims = verify::verify(raw, &keys, &Expected {
//!     algorithms: verify::DEFAULT_ALGORITHMS,              // or the server's metadata
//!     issuer, audience: client_id, now: clock.now(), skew: CLOCK_SKEW, require_iat: false,
//! })?;                                                     // Map of the verified claims
//! ```
//!
//! Nothing a provider sends reaches a crypto library unchecked: the header is parsed here (no
//! `none`, no HMAC, no `crit`), keys are [`PublicJwk`]s (checked sizes), and only a key whose
//! type and `alg` fit the header's `alg` is tried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

use super::algorithm::SigningAlgorithm;
use super::public_jwk::PublicJwk;

/// What a provider may sign with unless its metadata or the configuration says otherwise.
pub(crate) const DEFAULT_ALGORITHMS: &[SigningAlgorithm] = &[
    SigningAlgorithm::RS256,
    SigningAlgorithm::PS256,
    SigningAlgorithm::ES256,
    SigningAlgorithm::EdDSA,
];

/// At most this many keys are tried for one token (a JWKS without `kid`s): a key set of
/// thousands cannot make one token cost thousands of verifications.
const MAX_CANDIDATES: usize = 8;

/// At most this many keys are kept of one JWKS.
const MAX_KEYS: usize = 100;

/// Why a signed JWT was refused. Says nothing of the token's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// Not a compact JWS with a JSON object for header and claims, or a `crit` header.
    Malformed,
    /// Five parts: an encrypted JWT (JWE), which this crate does not decrypt.
    Encrypted,
    /// `alg` is not one the caller allows (`none` and HMAC never are).
    AlgorithmNotAllowed,
    /// No key of the set fits the header's `kid` and `alg`.
    UnknownKey,
    /// No fitting key verifies the signature.
    BadSignature,
    /// `iss` is not the expected issuer.
    Issuer,
    /// `aud` does not name the expected audience.
    Audience,
    /// `exp` is missing, or past (beyond the skew).
    Expired,
    /// `nbf` is in the future (beyond the skew).
    NotYetValid,
    /// `iat` is missing where required, or in the future (beyond the skew).
    IssuedInFuture,
    /// The key set could not be fetched or is not a JWKS.
    Jwks,
}

/// The header members that pick the verifying key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JwsHeader {
    pub(crate) alg: SigningAlgorithm,
    pub(crate) kid: Option<String>,
    /// `typ`, for callers whose tokens have one (JAR's `oauth-authz-req+jwt`).
    pub(crate) typ: Option<String>,
}

/// What the claims must say.
#[derive(Debug, Clone)]
pub(crate) struct Expected<'a> {
    /// The algorithms allowed (a subset of the JWS algorithms this crate verifies).
    pub(crate) algorithms: &'a [SigningAlgorithm],
    /// `iss`, character for character.
    pub(crate) issuer: &'a str,
    /// One of `aud` (a string or an array of strings).
    pub(crate) audience: &'a str,
    /// The time to judge `exp`, `nbf` and `iat` by: the crate's clock.
    pub(crate) now: SystemTime,
    /// How far the provider's clock may be from ours.
    pub(crate) skew: Duration,
    /// `iat` must be present (ID tokens: yes; JARM: no).
    pub(crate) require_iat: bool,
}

/// A provider's public keys, each checked ([`PublicJwk`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<PublicJwk>,
}

impl KeySet {
    /// The keys of a JWKS document (RFC 7517 §5): `{"keys": [...]}`. A key that fails the
    /// checks, or of a kind this crate does not use, is skipped (and logged at DEBUG with its
    /// `kid` and the reason), not fatal for the others.
    pub(crate) fn from_document(doc: &Map<String, Value>) -> Result<KeySet, JwtError> {
        let Some(Value::Array(keys)) = doc.get("keys") else {
            return Err(JwtError::Jwks);
        };
        let keys = keys
            .iter()
            .take(MAX_KEYS)
            .filter_map(|k| match PublicJwk::from_value(k) {
                Ok(key) => Some(key),
                Err(why) => {
                    let kid = k.get("kid").and_then(Value::as_str).unwrap_or_default();
                    let kid: String = kid.chars().take(64).filter(|c| !c.is_control()).collect();
                    tracing::debug!(kid, why, "skipped a key of the provider's JWKS");
                    None
                }
            })
            .collect();
        Ok(KeySet { keys })
    }

    /// How many keys passed the checks.
    #[allow(dead_code)] // the fuzz target's entry point
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys that may verify a token with `header`'s `kid` and `alg`.
    pub(crate) fn candidates(&self, header: &JwsHeader) -> Vec<&PublicJwk> {
        let kid = header.kid.as_deref();
        self.keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid() == Some(kid)))
            .filter(|k| k.may_verify(header.alg))
            .take(MAX_CANDIDATES)
            .collect()
    }
}

fn b64_json(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = B64.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The three parts of a compact JWS.
fn parts(raw: &str) -> Result<(&str, &str, &str), JwtError> {
    let mut parts = raw.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ if raw.split('.').count() == 5 => Err(JwtError::Encrypted),
        _ => Err(JwtError::Malformed),
    }
}

/// Reads a compact JWS's header: an `alg` outside `allowed` (`none` and HMAC are never in it:
/// a forger would "sign" with our public key) and `crit` are refused before any key is
/// looked at.
pub(crate) fn read_header(raw: &str, allowed: &[SigningAlgorithm]) -> Result<JwsHeader, JwtError> {
    let (header, _, _) = parts(raw)?;
    let header = b64_json(header)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(SigningAlgorithm::from_name)
        .filter(|alg| allowed.contains(alg))
        .ok_or(JwtError::AlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        return Err(JwtError::Malformed);
    }
    let text = |name: &str| header.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(JwsHeader {
        alg,
        kid: text("kid"),
        typ: text("typ"),
    })
}

/// The claims of `raw` when one of `keys` verifies its signature under `header`. Only the
/// signature: the claims are [`check_claims`]'s.
pub(crate) fn verify_signature(
    raw: &str,
    header: &JwsHeader,
    keys: &[&PublicJwk],
) -> Result<Map<String, Value>, JwtError> {
    let (h, p, s) = parts(raw)?;
    let signature = B64.decode(s).map_err(|_| JwtError::Malformed)?;
    let input = raw
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtError::Malformed)?;
    if !keys
        .iter()
        .any(|key| key.verify(header.alg, input.as_bytes(), &signature))
    {
        return Err(JwtError::BadSignature);
    }
    b64_json(p)
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The registered claims (RFC 7519 §4.1) against `expected`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(), JwtError> {
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(JwtError::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expected.audience,
        Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::Audience);
    }
    let now = seconds(expected.now);
    let skew = expected.skew.as_secs_f64();
    let number = |name: &str| claims.get(name).map(Value::as_f64);
    match number("exp") {
        Some(Some(exp)) if now < exp + skew => {}
        _ => return Err(JwtError::Expired),
    }
    match number("nbf") {
        None => {}
        Some(Some(nbf)) if nbf <= now + skew => {}
        Some(_) => return Err(JwtError::NotYetValid),
    }
    match number("iat") {
        None if !expected.require_iat => {}
        Some(Some(iat)) if iat <= now + skew => {}
        _ => return Err(JwtError::IssuedInFuture),
    }
    Ok(())
}

/// All of it, against a key set in hand: header, key, signature, claims. The claims, once
/// they may be trusted. (`Jwks::verify` in `id_token.rs` is the same with the provider's key
/// set fetched as needed.)
#[allow(dead_code)] // the one-call form: the fuzz target, and JARM (issue 20)
pub(crate) fn verify(
    raw: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, JwtError> {
    let header = read_header(raw, expected.algorithms)?;
    let candidates = keys.candidates(&header);
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey);
    }
    let claims = verify_signature(raw, &header, &candidates)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;
    use crate::jose::jws::Signer;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn expected() -> Expected<'static> {
        Expected {
            algorithms: DEFAULT_ALGORITHMS,
            issuer: "https://as.example",
            audience: "client-1",
            now: now(),
            skew: Duration::from_secs(60),
            require_iat: true,
        }
    }

    fn sign(key: &SigningKey, claims: &Value) -> String {
        use secrecy::ExposeSecret as _;
        let signer = Signer::new(key.clone()).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(signer.sign_jwt("JWT", claims))
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    fn key_set(keys: &[&SigningKey]) -> KeySet {
        let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk().to_value()).collect();
        KeySet::from_document(json!({ "keys": keys }).as_object().unwrap()).unwrap()
    }

    fn good_claims() -> Value {
        json!({"iss": "https://as.example", "aud": "client-1", "exp": NOW + 300, "iat": NOW})
    }

    #[test]
    fn a_good_token_of_each_algorithm_verifies_and_its_claims_are_returned() {
        for alg in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
            SigningAlgorithm::PS256,
        ] {
            let key = SigningKey::generate_sized(alg, 2048)
                .unwrap()
                .with_kid("k1");
            let claims = verify(&sign(&key, &good_claims()), &key_set(&[&key]), &expected())
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            assert_eq!(claims["aud"], "client-1");
        }
    }

    #[test]
    fn each_rule_has_its_error() {
        let key = SigningKey::generate(SigningAlgorithm::EdDSA)
            .unwrap()
            .with_kid("k1");
        let other = SigningKey::generate(SigningAlgorithm::EdDSA)
            .unwrap()
            .with_kid("k2");
        let keys = key_set(&[&key, &other]);
        let with = |change: Value| {
            let mut claims = good_claims();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    claims.as_object_mut().unwrap().remove(k);
                } else {
                    claims[k] = v.clone();
                }
            }
            verify(&sign(&key, &claims), &keys, &expected())
        };
        assert!(with(json!({})).is_ok());
        assert!(with(json!({"aud": ["x", "client-1"]})).is_ok());
        assert!(with(json!({"exp": NOW - 59})).is_ok(), "within the skew");
        assert_eq!(with(json!({"exp": NOW - 61})), Err(JwtError::Expired));
        assert_eq!(with(json!({"exp": null})), Err(JwtError::Expired));
        assert_eq!(with(json!({"exp": "soon"})), Err(JwtError::Expired));
        assert_eq!(with(json!({"nbf": NOW + 61})), Err(JwtError::NotYetValid));
        assert!(with(json!({"nbf": NOW + 59})).is_ok());
        assert_eq!(
            with(json!({"iat": NOW + 61})),
            Err(JwtError::IssuedInFuture)
        );
        assert_eq!(with(json!({"iat": null})), Err(JwtError::IssuedInFuture));
        assert_eq!(
            with(json!({"iss": "https://as.example/"})),
            Err(JwtError::Issuer)
        );
        assert_eq!(with(json!({"aud": "client-2"})), Err(JwtError::Audience));
        assert_eq!(with(json!({"aud": [1]})), Err(JwtError::Audience));
        // JARM does not require iat.
        let jarm = Expected {
            require_iat: false,
            ..expected()
        };
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove("iat");
        assert!(verify(&sign(&key, &claims), &keys, &jarm).is_ok());
    }

    #[test]
    fn headers_keys_and_signatures_are_checked_before_claims() {
        let key = SigningKey::generate(SigningAlgorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let keys = key_set(&[&key]);
        let token = sign(&key, &good_claims());
        let (h, p, s) = parts(&token).unwrap();
        let header = |v: Value| B64.encode(v.to_string());
        let cases = [
            (format!("{h}.{p}"), JwtError::Malformed),
            (format!("{h}.{p}.{s}.x.y"), JwtError::Encrypted),
            (
                format!("{}.{p}.{s}", header(json!({"alg": "none"}))),
                JwtError::AlgorithmNotAllowed,
            ),
            (
                format!("{}.{p}.{s}", header(json!({"alg": "HS256"}))),
                JwtError::AlgorithmNotAllowed,
            ),
            (
                format!(
                    "{}.{p}.{s}",
                    header(json!({"alg": "ES256", "kid": "k1", "crit": ["b64"]}))
                ),
                JwtError::Malformed,
            ),
            (
                format!("{}.{p}.{s}", header(json!({"alg": "ES256", "kid": "k9"}))),
                JwtError::UnknownKey,
            ),
            (
                format!("{}.{p}.{s}", header(json!({"alg": "EdDSA", "kid": "k1"}))),
                JwtError::UnknownKey,
            ),
            (
                format!("{h}.{p}.{}", B64.encode([0u8; 64])),
                JwtError::BadSignature,
            ),
            (format!("{h}.{p}.!!"), JwtError::Malformed),
            (
                format!("{h}.{}.{s}", B64.encode("{}")),
                JwtError::BadSignature,
            ),
        ];
        for (token, error) in cases {
            assert_eq!(verify(&token, &keys, &expected()), Err(error), "{token}");
        }
        // The caller's list is the list: ES256 refused when only EdDSA is allowed.
        let only_eddsa = Expected {
            algorithms: &[SigningAlgorithm::EdDSA],
            ..expected()
        };
        assert_eq!(
            verify(&token, &keys, &only_eddsa),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn a_key_set_keeps_the_good_keys_and_a_bounded_number() {
        let key = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
        let good = key.public_jwk().to_value();
        let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, good, "x", 7]});
        let set = KeySet::from_document(doc.as_object().unwrap()).unwrap();
        assert_eq!(set.keys.len(), 1);
        let many: Vec<Value> = (0..1000).map(|_| good.clone()).collect();
        let set = KeySet::from_document(json!({ "keys": many }).as_object().unwrap()).unwrap();
        assert_eq!(set.keys.len(), MAX_KEYS);
        let header = JwsHeader {
            alg: SigningAlgorithm::EdDSA,
            kid: None,
            typ: None,
        };
        assert_eq!(set.candidates(&header).len(), MAX_CANDIDATES);
        for doc in [json!({}), json!({"keys": {}})] {
            assert_eq!(
                KeySet::from_document(doc.as_object().unwrap()).unwrap_err(),
                JwtError::Jwks
            );
        }
    }
}

//! The in-process provider's DPoP state and proof checks (RFC 9449 §4.3: signature by the
//! `jwk` header's key, `typ`, `alg`, `htm`, `htu`, `iat`, `jti` replay, `ath`, `nonce`).

// A test server answering one request at a time: the size of its error type does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

/// How far a proof's `iat` may be from the provider's system clock. Tests that set a
/// [`ManualClock`](super::clock::ManualClock) on a DPoP configuration start it at the real time.
pub(super) const IAT_WINDOW: Duration = Duration::from_secs(300);

/// The provider's DPoP state.
#[derive(Debug, Default)]
pub(super) struct DpopServer {
    pub(super) require_nonce: bool,
    pub(super) nonce: String,
    pub(super) nonces_issued: u32,
    pub(super) issue_bearer: bool,
    pub(super) seen_jti: HashSet<String>,
    pub(super) proofs: usize,
    pub(super) nonce_challenges: usize,
    pub(super) refusals: Vec<String>,
    pub(super) last_proof: Option<String>,
}

/// Why a proof was not accepted.
pub(super) enum Refusal {
    UseNonce,
    Invalid(String),
}

impl DpopServer {
    /// Verifies the request's proof, if it has one; the key's thumbprint (`jkt`).
    pub(super) fn verify(
        &mut self,
        headers: &HeaderMap,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<Option<String>, Refusal> {
        let mut proofs = headers.get_all("dpop").iter();
        let Some(proof) = proofs.next() else {
            return Ok(None);
        };
        if proofs.next().is_some() {
            return Err(self.refuse("more than one DPoP header".to_owned()));
        }
        let Ok(proof) = proof.to_str() else {
            return Err(self.refuse("the DPoP header is not ASCII".to_owned()));
        };
        let proof_text = proof;
        let proof = match check(proof, htm, htu, access_token) {
            Ok(proof) => proof,
            Err(reason) => return Err(self.refuse(reason)),
        };
        if self.require_nonce && proof.nonce.as_deref() != Some(self.nonce.as_str()) {
            self.nonce_challenges += 1;
            return Err(Refusal::UseNonce);
        }
        if !self.seen_jti.insert(proof.jti) {
            return Err(self.refuse("jti replayed".to_owned()));
        }
        self.proofs += 1;
        self.last_proof = Some(proof_text.to_owned());
        Ok(Some(proof.jkt))
    }

    pub(super) fn refuse(&mut self, reason: String) -> Refusal {
        self.refusals.push(reason.clone());
        Refusal::Invalid(reason)
    }

    pub(super) fn nonce_header(&self) -> Option<HeaderValue> {
        self.require_nonce
            .then(|| HeaderValue::from_str(&self.nonce).ok())
            .flatten()
    }

    pub(super) fn new_nonce(&mut self) {
        self.nonces_issued += 1;
        self.nonce = format!("nonce-{}-{}", self.nonces_issued, random());
    }
}

pub(super) fn random() -> String {
    oauth2::CsrfToken::new_random().secret().clone()
}

pub(super) struct Proof {
    pub(super) jti: String,
    pub(super) nonce: Option<String>,
    pub(super) jkt: String,
}

/// RFC 9449 §4.3, steps 1 to 11 (the nonce and replay steps are the caller's).
pub(super) fn check(
    proof: &str,
    htm: &str,
    htu: &str,
    access_token: Option<&str>,
) -> Result<Proof, String> {
    let header_b64 = proof.split('.').next().unwrap_or("");
    let header: Value = B64
        .decode(header_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the proof is not a JWT")?;
    if header["typ"] != "dpop+jwt" {
        return Err("typ is not dpop+jwt".to_owned());
    }
    let alg = match header["alg"].as_str() {
        Some("ES256") => jsonwebtoken::Algorithm::ES256,
        Some("EdDSA") => jsonwebtoken::Algorithm::EdDSA,
        Some("RS256") => jsonwebtoken::Algorithm::RS256,
        _ => return Err("alg is not an asymmetric algorithm the provider accepts".to_owned()),
    };
    let jwk = header
        .get("jwk")
        .filter(|j| j.is_object())
        .ok_or("no jwk")?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk.get(m).is_some())
    {
        return Err("the jwk header holds a private key".to_owned());
    }
    let key = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone())
        .ok()
        .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(&jwk).ok())
        .ok_or("the jwk header is not a usable public key")?;
    // With both JOSE backends on, jsonwebtoken cannot pick one by itself (it panics).
    crate::jose::install_crypto_provider();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|e| format!("the proof's signature does not verify: {e}"))?
        .claims;
    if claims["htm"] != htm {
        return Err(format!("htm is not {htm}"));
    }
    if claims["htu"] != htu {
        return Err(format!("htu is not {htu}"));
    }
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if iat.abs_diff(now) > IAT_WINDOW.as_secs() {
        return Err("iat is outside the accepted window".to_owned());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or("no jti")?;
    match access_token {
        Some(token) if claims["ath"] != B64.encode(crate::jose::sha256(token.as_bytes())) => {
            return Err("ath does not match the access token".to_owned());
        }
        _ => {}
    }
    Ok(Proof {
        jti: jti.to_owned(),
        nonce: claims["nonce"].as_str().map(str::to_owned),
        jkt: thumbprint(jwk).ok_or("the jwk header lacks a required member")?,
    })
}

/// RFC 7638, computed here independently of the client's code.
pub(super) fn thumbprint(jwk: &Value) -> Option<String> {
    let m = |k: &str| jwk[k].as_str();
    let canonical = match m("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            m("crv")?,
            m("x")?,
            m("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv")?, m("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e")?, m("n")?),
        _ => return None,
    };
    Some(B64.encode(crate::jose::sha256(canonical.as_bytes())))
}

/// The token type to issue for a request whose proof had `jkt`.
pub(super) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

//! DPoP for [`TestProvider`]: proofs verified for real (RFC 9449 §4.3: signature by the
//! `jwk` header's key, `typ`, `alg`, `htm`, `htu`, `iat`, `jti` replay, `ath`, `nonce`),
//! tokens bound to the key's thumbprint, and a protected API that checks the binding.

// A test server answering one request at a time: the size of its error type does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Inner, TestProvider};

/// How far a proof's `iat` may be from the provider's system clock. Tests that set a
/// [`ManualClock`](super::ManualClock) on a DPoP configuration start it at the real time.
const IAT_WINDOW: Duration = Duration::from_secs(300);

/// The provider's DPoP state.
#[derive(Debug, Default)]
pub(super) struct DpopServer {
    require_nonce: bool,
    nonce: String,
    nonces_issued: u32,
    issue_bearer: bool,
    seen_jti: HashSet<String>,
    proofs: usize,
    nonce_challenges: usize,
    refusals: Vec<String>,
    last_proof: Option<String>,
}

/// Why a proof was not accepted.
enum Refusal {
    UseNonce,
    Invalid(String),
}

impl DpopServer {
    /// Verifies the request's proof, if it has one; the key's thumbprint (`jkt`).
    fn verify(
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

    fn refuse(&mut self, reason: String) -> Refusal {
        self.refusals.push(reason.clone());
        Refusal::Invalid(reason)
    }

    fn nonce_header(&self) -> Option<HeaderValue> {
        self.require_nonce
            .then(|| HeaderValue::from_str(&self.nonce).ok())
            .flatten()
    }

    fn new_nonce(&mut self) {
        self.nonces_issued += 1;
        self.nonce = format!("nonce-{}-{}", self.nonces_issued, random());
    }
}

fn random() -> String {
    oauth2::CsrfToken::new_random().secret().clone()
}

struct Proof {
    jti: String,
    nonce: Option<String>,
    jkt: String,
}

/// RFC 9449 §4.3, steps 1 to 11 (the nonce and replay steps are the caller's).
fn check(proof: &str, htm: &str, htu: &str, access_token: Option<&str>) -> Result<Proof, String> {
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
        Some(token) if claims["ath"] != B64.encode(Sha256::digest(token.as_bytes())) => {
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
fn thumbprint(jwk: &Value) -> Option<String> {
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
    Some(B64.encode(Sha256::digest(canonical.as_bytes())))
}

/// The token endpoint's step: the proof's `jkt`, or the error response (`use_dpop_nonce`,
/// `invalid_dpop_proof`).
pub(super) fn token_request(
    inner: &mut Inner,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    let htu = format!("{}/token", inner.issuer);
    match inner.dpop.verify(headers, "POST", &htu, None) {
        Ok(jkt) => Ok(jkt.filter(|_| !inner.dpop.issue_bearer)),
        Err(refusal) => {
            let (error, description) = match &refusal {
                Refusal::UseNonce => ("use_dpop_nonce", "a DPoP nonce is required".to_owned()),
                Refusal::Invalid(reason) => ("invalid_dpop_proof", reason.clone()),
            };
            let body = json!({"error": error, "error_description": description});
            let mut resp = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            add_nonce(inner, &mut resp);
            Err(resp)
        }
    }
}

/// Adds the current `DPoP-Nonce` to a response, when nonces are required.
pub(super) fn add_nonce(inner: &Inner, resp: &mut Response) {
    if let Some(nonce) = inner.dpop.nonce_header() {
        resp.headers_mut().insert("dpop-nonce", nonce);
    }
}

/// The API's step: the access token the request presents, after the DPoP rules: a
/// DPoP-bound token only with `Authorization: DPoP` and a valid proof by its key (with
/// `ath`), never as a bearer token.
pub(super) fn presented_token(
    inner: &mut Inner,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<Option<String>, Response> {
    let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let (scheme, token) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let bound = inner.access.get(token).and_then(|i| i.jkt.clone());
    let refuse = |inner: &Inner, challenge: &str| {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge.to_owned())],
            "unauthorized",
        )
            .into_response();
        add_nonce(inner, &mut resp);
        Err(resp)
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        if bound.is_some() {
            inner
                .dpop
                .refusals
                .push("a DPoP-bound token sent as a bearer token".to_owned());
            return refuse(
                inner,
                r#"DPoP error="invalid_token", error_description="the token is DPoP-bound""#,
            );
        }
        return Ok(Some(token.to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("dpop") {
        return Ok(None);
    }
    let htu = format!("{}{path}", inner.issuer);
    match inner.dpop.verify(headers, method, &htu, Some(token)) {
        Ok(Some(jkt)) if bound.as_deref() == Some(jkt.as_str()) => Ok(Some(token.to_owned())),
        Ok(_) => {
            inner
                .dpop
                .refusals
                .push("the proof's key is not the token's".to_owned());
            refuse(
                inner,
                r#"DPoP error="invalid_token", error_description="the token is not bound to this key""#,
            )
        }
        Err(Refusal::UseNonce) => refuse(
            inner,
            r#"DPoP error="use_dpop_nonce", error_description="a DPoP nonce is required""#,
        ),
        Err(Refusal::Invalid(_)) => refuse(
            inner,
            r#"DPoP error="invalid_dpop_proof", error_description="the DPoP proof is invalid""#,
        ),
    }
}

/// The token type to issue for a request whose proof had `jkt`.
pub(super) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

impl TestProvider {
    /// Requires a DPoP nonce (RFC 9449 §8, §9) in every proof, at the token endpoint and
    /// the API: a proof without the current nonce gets `use_dpop_nonce` and a `DPoP-Nonce`
    /// header. Starts with a fresh nonce.
    pub fn set_dpop_nonce_required(&self, on: bool) {
        self.with(|i| {
            i.dpop.require_nonce = on;
            i.dpop.new_nonce();
        })
    }

    /// Replaces the DPoP nonce: the next proof of each client gets one `use_dpop_nonce`.
    pub fn rotate_dpop_nonce(&self) {
        self.with(|i| i.dpop.new_nonce())
    }

    /// Issues Bearer tokens even to requests with a DPoP proof (a provider without DPoP).
    pub fn set_dpop_issue_bearer(&self, on: bool) {
        self.with(|i| i.dpop.issue_bearer = on)
    }

    /// How many `use_dpop_nonce` answers the provider and its API gave.
    pub fn dpop_nonce_challenges(&self) -> usize {
        self.with(|i| i.dpop.nonce_challenges)
    }

    /// How many DPoP proofs were verified and accepted.
    pub fn dpop_proofs(&self) -> usize {
        self.with(|i| i.dpop.proofs)
    }

    /// Why DPoP proofs or presentations were refused, in order.
    pub fn dpop_refusals(&self) -> Vec<String> {
        self.with(|i| i.dpop.refusals.clone())
    }

    /// The last DPoP proof accepted, to replay it in attack tests.
    pub fn last_dpop_proof(&self) -> Option<String> {
        self.with(|i| i.dpop.last_proof.clone())
    }

    /// The key thumbprint (`cnf.jkt`) an issued access token is bound to.
    pub fn dpop_jkt_of(&self, access_token: &str) -> Option<String> {
        self.with(|i| i.access.get(access_token).and_then(|t| t.jkt.clone()))
    }
}

//! DPoP for [`TestProvider`]: proofs on token requests, tokens bound to the key's thumbprint,
//! and a protected API that checks the binding.

// A test server answering one request at a time: the size of its error type does not matter.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::dpop_server::Refusal;
use super::state::{Inner, TestProvider};

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

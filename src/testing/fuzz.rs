//! Entry points for fuzzing the crate's parsers of what providers send: each runs the very
//! function a real response goes through, without a network (token responses, `DPoP-Nonce`
//! headers, JWKS documents and ID tokens as `complete()` reads them). `tests/fuzz.rs` drives
//! them with proptest; any fuzzer can.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::endpoint::{Answer, answer_from_body, parse_fields, rate_limit_error};
use crate::error::{Error, IdTokenError};
use crate::id_token::{self, IdTokenClaims};
use crate::jose::verify::{JwtError, KeySet};
use crate::jose::{DpopKey, SigningAlgorithm};
use crate::token::Token;

/// The longest `DPoP-Nonce` the crate keeps and sends back in its proofs.
pub const MAX_DPOP_NONCE_LEN: usize = crate::dpop::MAX_NONCE_LEN;

/// Reads an answer of the token endpoint, as the crate does: the body by what it is
/// (JSON or a form), the provider's error in any shape (a 429's too, as the rate limit it
/// is), then the token response rules; with `dpop`, for a request that carried a proof.
///
/// # Errors
///
/// The error the crate would report for this answer.
pub fn token_response(
    status: u16,
    content_type: &str,
    body: &[u8],
    dpop: bool,
) -> Result<Token, Error> {
    if status == 429 {
        return Err(Error::RateLimited {
            status,
            retry_after: None,
            error: parse_fields(body).and_then(|f| rate_limit_error(status, &f)),
        });
    }
    let answer: Answer = answer_from_body(status, content_type, body, &[])?;
    let key = if dpop {
        Some(DpopKey::generate(SigningAlgorithm::ES256)?)
    } else {
        None
    };
    crate::endpoint::token_from_answer_bound(answer, SystemTime::now(), key.as_ref(), &[])
}

/// Gives a fresh DPoP key a response carrying `DPoP-Nonce: value` (when `value` can be a
/// header at all), and returns the nonce its next proof carries: `None` when the crate did
/// not keep it.
pub fn dpop_nonce(value: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let header = http::HeaderValue::from_bytes(value).ok()?;
    let mut headers = http::HeaderMap::new();
    headers.insert(crate::dpop::DPOP_NONCE, header);
    let url = url::Url::parse("https://as.example.com/token").ok()?;
    let key = DpopKey::generate(SigningAlgorithm::ES256).ok()?;
    key.remember_nonce(&url, &headers);
    // An in-memory key signs without waiting: the future is ready on its first poll.
    let mut proof = std::pin::pin!(key.proof("POST", &url, None));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(proof) = proof.as_mut().poll(&mut context) else {
        return None;
    };
    let proof = proof.ok()?;
    let payload = proof.to_str().ok()?.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

/// Reads `document` as a fetched JWKS: the number of keys kept (each checked), or the error
/// a sign-in would get.
pub fn jwks_document(document: &[u8]) -> Result<usize, IdTokenError> {
    Ok(key_set(document)?.len())
}

/// Validates `raw` as the ID token of a sign-in that sent `nonce`, against the JWKS
/// `document`, at `now`: what `complete()` does once the key set is fetched.
pub fn id_token(
    raw: &str,
    document: &[u8],
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: SystemTime,
) -> Result<IdTokenClaims, IdTokenError> {
    id_token::validate_offline(raw, &key_set(document)?, issuer, client_id, nonce, now)
}

/// A JSON object, as the endpoint client reads a JWKS (anything else has no keys).
fn key_set(document: &[u8]) -> Result<KeySet, IdTokenError> {
    let fields: Map<String, Value> =
        serde_json::from_slice(document).map_err(|_| IdTokenError::Jwks)?;
    KeySet::from_document(&fields).map_err(|e: JwtError| e.into())
}

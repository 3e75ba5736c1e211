//! Entry points for fuzzing the crate's parsers of what providers send: each runs the very
//! function a real response goes through, without a network. `tests/fuzz.rs` drives them
//! with proptest; any fuzzer can.

use std::time::SystemTime;

use crate::endpoint::{Answer, answer_from_body, parse_fields, rate_limit_error};
use crate::error::Error;
use crate::jose::{DpopAlgorithm, DpopKey};
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
        Some(DpopKey::generate(DpopAlgorithm::Es256)?)
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
    let key = DpopKey::generate(DpopAlgorithm::Es256).ok()?;
    key.remember_nonce(&url, &headers);
    let proof = key.proof("POST", &url, None).ok()?;
    let payload = proof.to_str().ok()?.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

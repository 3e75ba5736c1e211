//! Entry points for the JOSE fuzz target (`tests/fuzz_jose.rs`): the functions a provider's
//! JWKS document and an ID token go through in `complete()`, without the HTTP around them.
//! Not part of the crate's promised API.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::error::IdTokenError;
use crate::id_token::{self, IdTokenClaims};
use crate::jose::verify::{JwtError, KeySet};

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

//! DPoP (RFC 9449) proofs and nonces: a key the client proves it holds on every request, so
//! that a stolen access or refresh token is useless without it.
//!
//! The key itself ([`DpopKey`]: material, public JWK, thumbprint, signing) is in `jose/`.
//! Here it signs a fresh proof JWT for each request (`typ=dpop+jwt`, the public key in
//! `jwk`, `htm`, `htu` without query and fragment, `iat`, a unique `jti`, `ath` for resource
//! requests, and the server's latest `nonce`) and remembers the last `DPoP-Nonce` each
//! origin sent. Token requests get their proof in the one token-endpoint client
//! (`endpoint/`); API requests through [`proof_for`], called by the request rules.

use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use url::Url;

use crate::error::Error;
use crate::jose::DpopKey;
use crate::token::Token;

/// The header a DPoP proof travels in.
pub(crate) const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");
/// The header a server names its nonce in (RFC 9449 §8).
pub(crate) const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

impl DpopKey {
    /// A signed DPoP proof (RFC 9449 §4.2) for one request of `method` to `url`, with `ath`
    /// when `access_token` is given (a resource request), and the latest nonce `url`'s origin
    /// sent: the `DPoP` header's value. `authed` makes these itself for every request it sends;
    /// this is for a request sent by other means (a WebSocket upgrade, another HTTP client).
    ///
    /// # Errors
    ///
    /// [`Error::Signing`] when the key's signer fails; [`Error::Config`] when the URL cannot
    /// be put in a header.
    pub async fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
    ) -> Result<HeaderValue, Error> {
        #[derive(Serialize)]
        struct Claims<'a> {
            jti: &'a str,
            htm: &'a str,
            htu: &'a str,
            iat: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            ath: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            nonce: Option<&'a str>,
        }
        let usage = &self.usage;
        let n = usage.jti_counter.fetch_add(1, Ordering::Relaxed);
        let jti = format!("{}.{n}", usage.jti_prefix);
        let iat = usage
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = self.nonce_for(url);
        let claims = Claims {
            jti: &jti,
            htm: method,
            // RFC 9449 §4.2: the target URI without query and fragment.
            htu: &url[..url::Position::AfterPath],
            iat,
            ath: access_token.map(|t| B64.encode(crate::jose::sha256(t.as_bytes()))),
            nonce: nonce.as_deref(),
        };
        let claims = serde_json::to_vec(&claims)
            .map_err(|e| Error::config(format!("cannot encode a DPoP proof: {e}")))?;
        let jwt = self.sign_proof(&claims).await?;
        let mut value = HeaderValue::try_from(jwt).map_err(|_| {
            Error::config("a DPoP proof is not a header value (a URL with odd characters?)")
        })?;
        // A proof is short-lived, but it is a credential for its request: keep it out of logs.
        value.set_sensitive(true);
        Ok(value)
    }

    fn nonce_for(&self, url: &Url) -> Option<Arc<str>> {
        let nonces = self
            .usage
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if nonces.is_empty() {
            return None;
        }
        nonces.get(&origin_of(url)).cloned()
    }

    /// Remembers the `DPoP-Nonce` a response from `url`'s origin carried: `None` without a
    /// usable one, `Some(true)` when it replaced another (or none).
    pub(crate) fn remember_nonce(&self, url: &Url, headers: &HeaderMap) -> Option<bool> {
        let nonce = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok())?;
        // RFC 9449 §8.1: `nonce = 1*NQCHAR`; anything else is ignored, not put in a proof.
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        let mut nonces = self
            .usage
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let origin = origin_of(url);
        if nonces.get(&origin).is_some_and(|n| &**n == nonce) {
            return Some(false);
        }
        nonces.insert(origin, nonce.into());
        Some(true)
    }
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The request rules' one DPoP step: for a DPoP-bound token, the `DPoP` header's proof for
/// this request (with `ath`); `None` for a bearer token. The `Authorization: DPoP <token>`
/// header comes with the token's scheme.
pub(crate) async fn proof_for(
    method: &http::Method,
    url: &Url,
    token: &Token,
) -> Result<Option<HeaderValue>, Error> {
    match token.dpop_key() {
        Some(key) => key
            .proof(method.as_str(), url, Some(token.access_token().secret()))
            .await
            .map(Some),
        None => Ok(None),
    }
}

/// What a response said about nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceAnswer {
    /// Not a nonce challenge (any new nonce it carried is remembered).
    Other,
    /// A 401 `use_dpop_nonce` naming a nonce; `new` when it replaced the remembered one.
    Asks { new: bool },
}

/// After a response to a request with `token`: remembers the origin's nonce, and says
/// whether the answer was a 401 `use_dpop_nonce` to answer with it (RFC 9449 §9). The
/// first such answer is retried even when a concurrent request already remembered the
/// nonce (this request's proof was made before); a retry's answer only when the nonce is
/// new again, so a server that keeps asking gets no loop.
pub(crate) fn after_response(
    token: &Token,
    url: &Url,
    unauthorized: bool,
    headers: &HeaderMap,
) -> NonceAnswer {
    let Some(key) = token.dpop_key() else {
        return NonceAnswer::Other;
    };
    match key.remember_nonce(url, headers) {
        Some(new) if unauthorized && asks_for_nonce(headers) => NonceAnswer::Asks { new },
        _ => NonceAnswer::Other,
    }
}

/// `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
fn asks_for_nonce(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            let v = v.trim_start();
            v.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("dpop"))
                && v.contains("use_dpop_nonce")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningAlgorithm;

    fn proof(key: &DpopKey, method: &str, url: &Url, token: Option<&str>) -> HeaderValue {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(key.proof(method, url, token))
            .unwrap()
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn proofs_have_every_claim_and_a_unique_jti() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let key = DpopKey::generate(alg).unwrap();
            let url = Url::parse("https://api.example.com/a/b?q=secret#frag").unwrap();
            let one = proof(&key, "GET", &url, Some("token"));
            let two = proof(&key, "GET", &url, None);
            assert!(one.is_sensitive());
            let parts: Vec<_> = one.to_str().unwrap().split('.').collect();
            let header = decode(parts[0]);
            assert_eq!(header["typ"], "dpop+jwt");
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["jwk"], key.public_jwk().members());
            assert!(header["jwk"].get("d").is_none());
            let claims = decode(parts[1]);
            assert_eq!(claims["htm"], "GET");
            assert_eq!(claims["htu"], "https://api.example.com/a/b");
            assert_eq!(
                claims["ath"],
                B64.encode(crate::jose::sha256(b"token")),
                "ath = base64url(SHA-256(token))"
            );
            let claims_two = decode(two.to_str().unwrap().split('.').nth(1).unwrap());
            assert_ne!(claims["jti"], claims_two["jti"]);
            assert!(claims_two.get("ath").is_none());
        }
    }

    #[test]
    fn nonces_are_remembered_per_origin() {
        let key = DpopKey::generate(SigningAlgorithm::EdDSA).unwrap();
        let a = Url::parse("https://a.example/token").unwrap();
        let b = Url::parse("https://b.example/token").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE, HeaderValue::from_static("n-1"));
        assert_eq!(key.remember_nonce(&a, &headers), Some(true));
        assert_eq!(key.remember_nonce(&a, &headers), Some(false), "not new");
        let nonce_of = |url: &Url| {
            let proof = proof(&key, "POST", url, None);
            decode(proof.to_str().unwrap().split('.').nth(1).unwrap())
                .get("nonce")
                .cloned()
        };
        assert_eq!(nonce_of(&a), Some(serde_json::json!("n-1")));
        assert_eq!(nonce_of(&b), None);
        headers.insert(DPOP_NONCE, HeaderValue::from_static("bad\"nonce"));
        assert_eq!(key.remember_nonce(&b, &headers), None);
    }
}

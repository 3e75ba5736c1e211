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
use url::Url;

use crate::error::Error;
use crate::jose::DpopKey;
use crate::token::Token;

/// The header a DPoP proof travels in.
pub(crate) const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");
/// The longest `DPoP-Nonce` kept and sent back. RFC 9449 sets no limit; servers send tens of
/// characters (a random value or a short encrypted timestamp).
pub(crate) const MAX_NONCE_LEN: usize = 512;

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
        let ath = access_token.map(ath_of);
        self.proof_with_ath(method, url, ath.as_deref()).await
    }

    /// A signed proof for one request. `ath` is set for resource requests: the token's hash,
    /// made once per token ([`ath_of`], kept by the token).
    ///
    /// Per request, only what differs is made: the claims (`jti` from the key's prefix and
    /// counter, `htm`, `htu` borrowed from the URL, `iat`, the cached `ath`, the origin's
    /// nonce) are written straight into one buffer, encoded after the key's cached header,
    /// and signed; the proof becomes the header value without another copy.
    pub(crate) async fn proof_with_ath(
        &self,
        method: &str,
        url: &Url,
        ath: Option<&str>,
    ) -> Result<HeaderValue, Error> {
        let usage = &self.usage;
        let n = usage.jti_counter.fetch_add(1, Ordering::Relaxed);
        let iat = usage
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = self.nonce_for(url);
        let mut claims = Vec::with_capacity(160 + url.as_str().len());
        write_claims(
            &mut claims,
            &usage.jti_prefix,
            n,
            method,
            // RFC 9449 §4.2: the target URI without query and fragment.
            &url[..url::Position::AfterPath],
            iat,
            ath,
            nonce.as_deref(),
        )?;
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
        // A few origins at most: compared in place, so no origin string is made per request.
        nonces
            .iter()
            .find(|(origin, _)| is_origin_of(origin, url))
            .map(|(_, nonce)| nonce.clone())
    }

    /// Remembers the `DPoP-Nonce` a response from `url`'s origin carried: `None` without a
    /// usable one, `Some(true)` when it replaced another (or none).
    pub(crate) fn remember_nonce(&self, url: &Url, headers: &HeaderMap) -> Option<bool> {
        let nonce = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok())?;
        // RFC 9449 §8.1: `nonce = 1*NQCHAR`; anything else is ignored, not put in a proof.
        // So is one longer than any server sends: it would go into every later proof.
        if nonce.is_empty()
            || nonce.len() > MAX_NONCE_LEN
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

/// The claims of a proof, as JSON, into `out`: `{"jti":..,"htm":..,"htu":..,"iat":..}` with
/// `ath` and `nonce` when given. Strings go through serde_json, so that a nonce's `\` (an
/// NQCHAR) is escaped.
#[allow(clippy::too_many_arguments)] // the claims of RFC 9449 §4.2, each named
fn write_claims(
    out: &mut Vec<u8>,
    jti_prefix: &str,
    jti_counter: u64,
    htm: &str,
    htu: &str,
    iat: u64,
    ath: Option<&str>,
    nonce: Option<&str>,
) -> Result<(), Error> {
    use std::io::Write as _;
    let fail =
        |e: &dyn std::fmt::Display| Error::config(format!("cannot encode a DPoP proof: {e}"));
    let string =
        |out: &mut Vec<u8>, s: &str| serde_json::to_writer(&mut *out, s).map_err(|e| fail(&e));
    // The prefix is base64url and the counter a number: nothing to escape.
    write!(out, r#"{{"jti":"{jti_prefix}.{jti_counter}","htm":"#).map_err(|e| fail(&e))?;
    string(out, htm)?;
    out.extend_from_slice(b",\"htu\":");
    string(out, htu)?;
    write!(out, r#","iat":{iat}"#).map_err(|e| fail(&e))?;
    if let Some(ath) = ath {
        out.extend_from_slice(b",\"ath\":");
        string(out, ath)?;
    }
    if let Some(nonce) = nonce {
        out.extend_from_slice(b",\"nonce\":");
        string(out, nonce)?;
    }
    out.push(b'}');
    Ok(())
}

/// Whether `origin` (an ASCII serialization, `scheme://host[:port]`) is `url`'s origin,
/// compared without making `url`'s.
fn is_origin_of(origin: &str, url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let rest = origin
        .strip_prefix(url.scheme())
        .and_then(|r| r.strip_prefix("://"))
        .and_then(|r| r.strip_prefix(host));
    match (rest, url.port()) {
        (Some(""), None) => true,
        (Some(rest), Some(port)) => rest
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p == port),
        _ => false,
    }
}

/// A token's `ath`: base64url(SHA-256(access token)), RFC 9449 §4.2.
fn ath_of(access_token: &str) -> String {
    B64.encode(crate::jose::sha256(access_token.as_bytes()))
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
            .proof_with_ath(method.as_str(), url, Some(token.ath(ath_of)))
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
        Some(new) if unauthorized && crate::challenge::asks_for_dpop_nonce(headers) => {
            NonceAnswer::Asks { new }
        }
        _ => NonceAnswer::Other,
    }
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

    #[test]
    fn claims_are_json_with_escaped_strings() {
        let mut out = Vec::new();
        write_claims(
            &mut out,
            "p",
            7,
            "GET",
            "https://a.example/x",
            9,
            Some("h"),
            Some(r"n\q"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["jti"], "p.7");
        assert_eq!(v["htu"], "https://a.example/x");
        assert_eq!(v["iat"], 9);
        assert_eq!(v["ath"], "h");
        assert_eq!(v["nonce"], r"n\q");
        out.clear();
        write_claims(
            &mut out,
            "p",
            8,
            "POST",
            "https://a.example/",
            1,
            None,
            None,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("ath").is_none() && v.get("nonce").is_none());
    }

    #[test]
    fn origins_compare_in_place_as_their_serialization() {
        for (url, other) in [
            ("https://a.example/x", "https://b.example/x"),
            ("https://a.example:8443/x", "https://a.example/x"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8081/"),
            ("http://[::1]:9/", "https://[::1]:9/"),
            ("https://xn--bcher-kva.example/", "https://a.example/"),
        ] {
            let url = Url::parse(url).unwrap();
            let other = Url::parse(other).unwrap();
            let origin = origin_of(&url);
            assert!(is_origin_of(&origin, &url), "{origin}");
            assert!(!is_origin_of(&origin, &other), "{origin} vs {other}");
        }
    }
}

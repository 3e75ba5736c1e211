//! How the crate signs: [`Signer`], its handle on a [`JwsSigner`] (an in-memory key signed
//! directly, anything else awaited and its signature checked), and the compact JWS assembly
//! (RFC 7515 §7.1), the one place a signed JWT is put together.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};

use super::algorithm::{HmacAlgorithm, SigningAlgorithm};
use super::crypto;
use super::public_jwk::PublicJwk;
use super::signer::JwsSigner;
use super::signing_key::SigningKey;
use crate::error::Error;

/// The crate's handle on a signer: an in-memory key is signed directly, anything else through
/// its future, with the signature checked.
#[derive(Clone)]
pub(crate) enum Signer {
    Local(SigningKey),
    External(Arc<dyn JwsSigner>),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Local(key) => key.fmt(f),
            Signer::External(signer) => signer.fmt(f),
        }
    }
}

impl Signer {
    /// Wraps `signer`, recognising an in-memory [`SigningKey`] (and an `Arc<dyn JwsSigner>`,
    /// which is not wrapped twice).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the signer's algorithm does not fit its public key.
    pub(crate) fn new<S: JwsSigner + 'static>(signer: S) -> Result<Signer, Error> {
        let any: &dyn Any = &signer;
        let wrapped = if let Some(key) = any.downcast_ref::<SigningKey>() {
            Signer::Local(key.clone())
        } else if let Some(shared) = any.downcast_ref::<Arc<dyn JwsSigner>>() {
            Signer::External(shared.clone())
        } else {
            Signer::External(Arc::new(signer))
        };
        let alg = wrapped.algorithm();
        if alg.key_type() != wrapped.public_jwk().key_type() {
            return Err(Error::config(format!(
                "signer: a {} key cannot sign {alg}",
                wrapped.public_jwk().key_type().name()
            )));
        }
        Ok(wrapped)
    }

    pub(crate) fn algorithm(&self) -> SigningAlgorithm {
        match self {
            Signer::Local(key) => key.algorithm(),
            Signer::External(s) => s.algorithm(),
        }
    }

    pub(crate) fn key_id(&self) -> Option<&str> {
        match self {
            Signer::Local(key) => key.kid(),
            Signer::External(s) => s.key_id(),
        }
    }

    pub(crate) fn public_jwk(&self) -> &PublicJwk {
        match self {
            Signer::Local(key) => key.public_jwk(),
            Signer::External(s) => s.public_jwk(),
        }
    }

    fn certificate_thumbprint(&self) -> Option<&str> {
        match self {
            Signer::Local(key) => key.certificate_thumbprint(),
            Signer::External(s) => s.certificate_thumbprint(),
        }
    }

    /// The signature of `message`. An external signer's answer is verified with its public
    /// key first: nothing leaves with a signature the provider would refuse.
    pub(crate) async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            Signer::Local(key) => key.sign_now(message),
            Signer::External(signer) => {
                let alg = signer.algorithm();
                let signature = signer.sign(message).await?;
                if !signer.public_jwk().verify(alg, message, &signature) {
                    return Err(Error::signing(BadSignature));
                }
                Ok(signature)
            }
        }
    }

    /// The JOSE header of a JWT of type `typ` this signer signs: `typ`, `alg`, and `kid` and
    /// `x5t#S256` when it has them.
    pub(crate) fn header(&self, typ: &str) -> Value {
        let mut header = json!({"typ": typ, "alg": self.algorithm().as_str()});
        if let Some(obj) = header.as_object_mut() {
            if let Some(kid) = self.key_id() {
                obj.insert("kid".into(), json!(kid));
            }
            if let Some(x5t) = self.certificate_thumbprint() {
                obj.insert("x5t#S256".into(), json!(x5t));
            }
        }
        header
    }

    /// A signed JWT of `claims` under [`header`](Signer::header)`(typ)`.
    pub(crate) async fn sign_jwt(
        &self,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<SecretString, Error> {
        let header = encode_part(&self.header(typ))?;
        let claims = serde_json::to_vec(claims).map_err(encoding_failed)?;
        self.sign_compact(&header, &claims)
            .await
            .map(SecretString::from)
    }

    /// `header_b64 . BASE64URL(claims_json) . BASE64URL(signature)`: the one place a compact
    /// JWS is put together.
    pub(crate) async fn sign_compact(
        &self,
        header_b64: &str,
        claims_json: &[u8],
    ) -> Result<String, Error> {
        let mut jws = signing_input(header_b64, claims_json);
        let signature = self.sign(jws.as_bytes()).await?;
        append_signature(&mut jws, &signature);
        Ok(jws)
    }
}

/// A compact JWS of `claims` under `header`, signed now by `sign` (an HMAC, an in-memory key).
pub(crate) fn sign_jwt_with(
    header: &Value,
    claims: &impl Serialize,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, Error>,
) -> Result<String, Error> {
    let header = encode_part(header)?;
    let claims = serde_json::to_vec(claims).map_err(encoding_failed)?;
    let mut jws = signing_input(&header, &claims);
    let signature = sign(jws.as_bytes())?;
    append_signature(&mut jws, &signature);
    Ok(jws)
}

fn append_signature(jws: &mut String, signature: &[u8]) {
    jws.push('.');
    B64.encode_string(signature, jws);
}

/// `header_b64 . BASE64URL(claims_json)`, with room for the signature.
fn signing_input(header_b64: &str, claims_json: &[u8]) -> String {
    // base64 is 4/3 the size; an RSA-4096 signature is 683 characters.
    let mut jws = String::with_capacity(header_b64.len() + claims_json.len() * 4 / 3 + 700);
    jws.push_str(header_b64);
    jws.push('.');
    B64.encode_string(claims_json, &mut jws);
    jws
}

/// A JWT signed with a shared secret (`client_secret_jwt`, RFC 7523 §2.2 with HMAC): the same
/// assembly, with the secret as the key.
pub(crate) fn sign_hmac_jwt(
    alg: HmacAlgorithm,
    secret: &[u8],
    claims: &impl Serialize,
) -> Result<SecretString, Error> {
    if secret.is_empty() {
        return Err(Error::config("client_secret_jwt needs a non-empty secret"));
    }
    let header = json!({"typ": "JWT", "alg": alg.as_str()});
    sign_jwt_with(&header, claims, |input| {
        Ok(crypto::hmac(alg, secret, input))
    })
    .map(SecretString::from)
}

/// BASE64URL(JSON(value)).
pub(crate) fn encode_part(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_vec(value)
        .map(|json| B64.encode(json))
        .map_err(encoding_failed)
}

fn encoding_failed(e: serde_json::Error) -> Error {
    Error::config(format!("cannot encode a JWT: {e}"))
}

/// A signer's answer that its own public key does not verify.
#[derive(Debug)]
struct BadSignature;

impl fmt::Display for BadSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the signature does not verify with the signer's public key")
    }
}

impl std::error::Error for BadSignature {}

//! The one signer trait: [`JwsSigner`], the key every JWT this crate sends is signed through
//! (client assertions, the JWT bearer grant, DPoP proofs, request objects). An in-memory
//! [`SigningKey`](super::SigningKey) is one implementation; a KMS, an HSM or a cloud key
//! service is another. How the crate uses one (`jws.rs`): a `SigningKey` is signed without a
//! future, any other signer is awaited and its signature checked against its public key.

use std::fmt;
use std::sync::Arc;

use super::algorithm::SigningAlgorithm;
use super::public_jwk::PublicJwk;
use crate::error::Error;
use crate::future::BoxFuture;

/// A key that signs JWS (RFC 7515) signing inputs, wherever it lives: in this process
/// ([`SigningKey`](super::SigningKey)), or in a KMS, an HSM or a cloud key service that never hands the private
/// key out.
///
/// Every JWT `authed` signs goes through this trait: `private_key_jwt` client assertions
/// ([`OAuthConfigBuilder::private_key`](crate::OAuthConfigBuilder::private_key)), JWT bearer
/// grants ([`OAuthConfig::jwt_bearer`](crate::OAuthConfig::jwt_bearer)) and DPoP proofs
/// ([`DpopKey::from_signer`](crate::DpopKey::from_signer)). The crate builds the header
/// (`alg` from [`algorithm`](JwsSigner::algorithm), `kid` from [`key_id`](JwsSigner::key_id))
/// and the claims, and asks [`sign`](JwsSigner::sign) for the signature of
/// `BASE64URL(header) || '.' || BASE64URL(claims)`.
///
/// A signature from an implementation other than [`SigningKey`](super::SigningKey) is verified with
/// [`public_jwk`](JwsSigner::public_jwk) before it is used: a key service that answers with the
/// wrong key or a damaged signature is an [`Error::Signing`], and no request carrying it is
/// sent. Failures of `sign` are returned to the caller the same way (wrap them with
/// [`Error::signing`]); nothing is sent without a signature.
///
/// `examples/remote_signer.rs` implements it for a key service reached over HTTP.
pub trait JwsSigner: Send + Sync + fmt::Debug {
    /// The algorithm of every signature: the JWT's `alg` header. It must fit the public key's
    /// type (ES256 for P-256, EdDSA for Ed25519, RS*/PS* for RSA).
    fn algorithm(&self) -> SigningAlgorithm;

    /// The key's `kid`, the header the provider finds the key by; `None` leaves it out.
    fn key_id(&self) -> Option<&str>;

    /// The public key: what the provider verifies with, and what a DPoP proof carries.
    fn public_jwk(&self) -> &PublicJwk;

    /// The JWS signature of `message` for [`algorithm`](JwsSigner::algorithm), as RFC 7518
    /// encodes it: for ES256 the 64 bytes `r || s` (not DER: convert a key service's DER
    /// signature), for EdDSA the 64-byte signature, for RSA the modulus-length signature.
    ///
    /// # Errors
    ///
    /// Whatever keeps the key from signing, as [`Error::signing`].
    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>>;

    /// The `x5t#S256` header (base64url SHA-256 of the DER certificate), when the provider
    /// finds the key by its certificate (Microsoft Entra). `None` by default.
    fn certificate_thumbprint(&self) -> Option<&str> {
        None
    }
}

impl<T: JwsSigner + ?Sized> JwsSigner for Arc<T> {
    fn algorithm(&self) -> SigningAlgorithm {
        (**self).algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        (**self).key_id()
    }

    fn public_jwk(&self) -> &PublicJwk {
        (**self).public_jwk()
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        (**self).sign(message)
    }

    fn certificate_thumbprint(&self) -> Option<&str> {
        (**self).certificate_thumbprint()
    }
}

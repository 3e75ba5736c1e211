//! JOSE (RFC 7515, 7517, 7518, 7638): everything that signs or verifies, on one crypto stack.
//!
//! - `key_format`: private keys read once (PEM, PKCS#8, SEC1, PKCS#1, private JWKs).
//! - `crypto`: the backend (aws-lc-rs, or RustCrypto with feature `rust-crypto`).
//! - `public_jwk`: public keys, checked before any crypto library sees them; thumbprints.
//! - `signer`: the one signer trait, [`JwsSigner`].
//! - `jws`: how the crate signs through it, and the compact JWS assembly.
//! - `signing_key`: [`SigningKey`], the in-memory signer.
//! - `dpop_key`: [`DpopKey`], a signer with its proof header and nonce memory.
//! - `verify`: the one verifier (ID tokens, JARM responses): header, allowed algorithms,
//!   key choice, signature, and the registered claims with clock skew.
//!
//! A floor above `error`, `clock` and `future`, below everything else.

mod algorithm;
mod crypto;
mod crypto_provider;
mod dpop_key;
pub(crate) mod jws;
mod key_format;
mod public_jwk;
mod signer;
mod signing_key;
pub(crate) mod verify;

pub(crate) use algorithm::HmacAlgorithm;
pub use algorithm::SigningAlgorithm;
pub(crate) use crypto::sha256;
// The `testing` provider signs ID tokens (HMAC among them) and checks with jsonwebtoken.
#[cfg(any(test, feature = "testing"))]
pub(crate) use crypto::hmac;
#[cfg(any(test, feature = "testing"))]
pub(crate) use crypto_provider::install_crypto_provider;
pub use dpop_key::DpopKey;
pub(crate) use dpop_key::is_dpop_type;
pub use public_jwk::PublicJwk;
pub use signer::JwsSigner;
pub use signing_key::SigningKey;

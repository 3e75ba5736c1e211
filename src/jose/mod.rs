//! JOSE (RFC 7515, 7517, 7638): key material, signing, verifying, JWK checks and thumbprints,
//! for everything that signs (client assertions, the JWT bearer grant, DPoP proofs) or
//! verifies (ID tokens). A floor above `error` and `clock`, below everything else.

mod crypto_provider;
mod dpop_key;
mod signing_key;
pub(crate) mod verify;

pub(crate) use crypto_provider::install_crypto_provider;
pub(crate) use dpop_key::is_dpop_type;
pub use dpop_key::{DpopAlgorithm, DpopKey};
pub use signing_key::{SigningAlgorithm, SigningKey};

//! The one crypto stack under JOSE: signing, verifying, SHA-256 and HMAC, on aws-lc-rs (the
//! default, feature `aws-lc-rs`: the library rustls already builds for TLS) or on the pure-Rust
//! RustCrypto crates (feature `rust-crypto`, used only when `aws-lc-rs` is off).
//!
//! Both backends take the same inputs: [`KeyMaterial`](super::key_format::KeyMaterial) read by
//! `key_format`, and public keys already checked by `public_jwk`, so no input reaches a crypto
//! library before this crate has checked its sizes.

#[cfg(feature = "aws-lc-rs")]
mod aws_lc;
#[cfg(feature = "aws-lc-rs")]
pub(crate) use aws_lc::{PrivateKey, generate_rsa, hmac, sha256, verify};

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
mod rust_crypto;
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
pub(crate) use rust_crypto::{PrivateKey, generate_rsa, hmac, sha256, verify};

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "authed needs a crypto backend for JOSE: enable the feature `aws-lc-rs` (a default feature) \
     or `rust-crypto` (pure Rust)"
);

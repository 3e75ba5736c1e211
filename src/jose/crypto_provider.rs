//! Which crypto backend `jsonwebtoken` uses, for the code that still calls it (the `testing`
//! provider, and unit tests that check our JWTs with an independent implementation).

use std::sync::Once;

/// `jsonwebtoken` panics when it cannot tell which backend to use (both features on, from
/// another crate in the graph); naming ours, the same stack as the crate's, makes that
/// impossible.
#[allow(dead_code)] // used by the `testing` provider and unit tests
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc-rs")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        let _ = provider.install_default();
    });
}

//! Which crypto backend `jsonwebtoken` uses.

use std::sync::Once;

/// `jsonwebtoken` panics when it cannot tell which backend to use (both features on, from
/// another crate in the graph); naming ours first makes that impossible.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

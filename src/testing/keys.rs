//! The in-process provider's signing keys, made when it starts: the published crate carries no
//! private key.

use std::sync::OnceLock;

use crate::jose::{SigningAlgorithm, SigningKey};

/// The provider's signing keys, made when it starts: none is written in the crate. The RSA
/// key (RS256 and PS256) is made on first use, as it takes a moment.
#[derive(Debug)]
pub(super) struct Keys {
    pub(super) ed: SigningKey,
    /// The EdDSA key after [`rotate_signing_key`](super::TestProvider::rotate_signing_key).
    pub(super) ed2: SigningKey,
    pub(super) ec: SigningKey,
    rsa: OnceLock<SigningKey>,
}

impl Keys {
    pub(super) fn generate() -> Keys {
        let make = |alg| SigningKey::generate(alg).expect("the OS random number generator works");
        Keys {
            ed: make(SigningAlgorithm::EdDSA),
            ed2: make(SigningAlgorithm::EdDSA),
            ec: make(SigningAlgorithm::ES256),
            rsa: OnceLock::new(),
        }
    }

    pub(super) fn rsa(&self) -> &SigningKey {
        self.rsa.get_or_init(|| {
            // 2048 bits: the size providers use, and quick to make.
            SigningKey::generate_sized(SigningAlgorithm::RS256, 2048)
                .expect("the OS random number generator works")
        })
    }
}

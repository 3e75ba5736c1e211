//! The JWS algorithms this crate signs and verifies with (RFC 7518 §3), and the key types they
//! need.

use std::fmt;

/// A JWS algorithm: what a key signs with, and what a verifier may accept.
///
/// Each key type has a default ([`SigningKey::algorithm`](crate::SigningKey::algorithm)); an RSA
/// key may sign with any of the RSA algorithms
/// ([`SigningKey::with_algorithm`](crate::SigningKey::with_algorithm)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default for RSA keys, accepted everywhere.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (FAPI 2 requires PS256 or ES256 or EdDSA).
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256: the algorithm of P-256 keys, and the default for DPoP
    /// (every DPoP server supports it).
    #[default]
    ES256,
    /// Ed25519: the algorithm of Ed25519 keys, the fastest to sign; check that the provider
    /// lists it (`dpop_signing_alg_values_supported`, `token_endpoint_auth_signing_alg_values_supported`).
    EdDSA,
}

/// The kind of a key, which decides the algorithms it can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    P256,
    Ed25519,
}

impl KeyType {
    /// The key type's default algorithm.
    pub(crate) fn default_algorithm(self) -> SigningAlgorithm {
        match self {
            KeyType::Rsa => SigningAlgorithm::RS256,
            KeyType::P256 => SigningAlgorithm::ES256,
            KeyType::Ed25519 => SigningAlgorithm::EdDSA,
        }
    }

    /// Its name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::P256 => "P-256",
            KeyType::Ed25519 => "Ed25519",
        }
    }
}

impl SigningAlgorithm {
    pub(crate) const ALL: [SigningAlgorithm; 8] = [
        SigningAlgorithm::RS256,
        SigningAlgorithm::RS384,
        SigningAlgorithm::RS512,
        SigningAlgorithm::PS256,
        SigningAlgorithm::PS384,
        SigningAlgorithm::PS512,
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
    ];

    /// The algorithm's JOSE name (`"RS256"`, `"EdDSA"`, …), as in a JWT header or provider
    /// metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::RS384 => "RS384",
            SigningAlgorithm::RS512 => "RS512",
            SigningAlgorithm::PS256 => "PS256",
            SigningAlgorithm::PS384 => "PS384",
            SigningAlgorithm::PS512 => "PS512",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named `name` (case-sensitive, as JOSE names are), if this crate signs
    /// with it.
    pub fn from_name(name: &str) -> Option<SigningAlgorithm> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The key type that signs with this algorithm.
    pub(crate) fn key_type(self) -> KeyType {
        match self {
            SigningAlgorithm::RS256
            | SigningAlgorithm::RS384
            | SigningAlgorithm::RS512
            | SigningAlgorithm::PS256
            | SigningAlgorithm::PS384
            | SigningAlgorithm::PS512 => KeyType::Rsa,
            SigningAlgorithm::ES256 => KeyType::P256,
            SigningAlgorithm::EdDSA => KeyType::Ed25519,
        }
    }

    /// jsonwebtoken's name for it: unit tests check our JWTs with it.
    #[cfg(test)]
    pub(crate) fn jose(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            SigningAlgorithm::RS256 => A::RS256,
            SigningAlgorithm::RS384 => A::RS384,
            SigningAlgorithm::RS512 => A::RS512,
            SigningAlgorithm::PS256 => A::PS256,
            SigningAlgorithm::PS384 => A::PS384,
            SigningAlgorithm::PS512 => A::PS512,
            SigningAlgorithm::ES256 => A::ES256,
            SigningAlgorithm::EdDSA => A::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HMAC algorithms of `client_secret_jwt` (RFC 7518 §3.2). Never accepted when verifying: a
/// forger would "sign" with a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlgorithm {
    HS256,
    HS384,
    HS512,
}

impl HmacAlgorithm {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HmacAlgorithm::HS256 => "HS256",
            HmacAlgorithm::HS384 => "HS384",
            HmacAlgorithm::HS512 => "HS512",
        }
    }
}

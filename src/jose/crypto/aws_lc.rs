//! JOSE on aws-lc-rs. Key pairs are parsed once and kept: a signature is one call.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use aws_lc_rs::{digest, hmac as lc_hmac};
use secrecy::zeroize::Zeroizing;

use crate::jose::algorithm::{HmacAlgorithm, SigningAlgorithm};
use crate::jose::key_format::{KeyMaterial, PublicParams};

/// A private key, ready to sign.
pub(crate) enum PrivateKey {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey")
    }
}

impl PrivateKey {
    /// The key pair of `material` and its public key; `None` when the numbers are not a
    /// consistent key (RSA), or not a valid scalar (P-256).
    pub(crate) fn new(material: &KeyMaterial) -> Option<(PrivateKey, PublicParams)> {
        match material {
            KeyMaterial::Rsa(rsa) => {
                let components = aws_lc_rs::rsa::KeyPairComponents {
                    public_key: signature::RsaPublicKeyComponents {
                        n: rsa.n.as_slice(),
                        e: rsa.e.as_slice(),
                    },
                    d: rsa.d.as_slice(),
                    p: rsa.p.as_slice(),
                    q: rsa.q.as_slice(),
                    dP: rsa.dp.as_slice(),
                    dQ: rsa.dq.as_slice(),
                    qInv: rsa.qi.as_slice(),
                };
                let key = RsaKeyPair::from_components(&components).ok()?;
                let public = PublicParams::Rsa {
                    n: rsa.n.to_vec(),
                    e: rsa.e.to_vec(),
                };
                Some((PrivateKey::Rsa(key), public))
            }
            KeyMaterial::P256(_) => {
                let der = material.to_pkcs8_der().ok()?;
                let key =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .ok()?;
                // The uncompressed point: 0x04, x, y.
                let point = key.public_key().as_ref();
                let x = point.get(1..33)?.try_into().ok()?;
                let y = point.get(33..65)?.try_into().ok()?;
                Some((PrivateKey::P256(key), PublicParams::P256 { x, y }))
            }
            KeyMaterial::Ed25519(seed) => {
                let key = Ed25519KeyPair::from_seed_unchecked(seed.as_slice()).ok()?;
                let x = key.public_key().as_ref().try_into().ok()?;
                Some((PrivateKey::Ed25519(key), PublicParams::Ed25519 { x }))
            }
        }
    }

    /// The JWS signature of `message` with `alg` (of this key's type), as RFC 7518 encodes
    /// it (ES256: the 64 bytes of `r || s`).
    pub(crate) fn sign(&self, alg: SigningAlgorithm, message: &[u8]) -> Option<Vec<u8>> {
        match self {
            PrivateKey::Rsa(key) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    SigningAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    SigningAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    SigningAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    SigningAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
                    SigningAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
                    SigningAlgorithm::PS512 => &signature::RSA_PSS_SHA512,
                    SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => return None,
                };
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(padding, &SystemRandom::new(), message, &mut out)
                    .ok()?;
                Some(out)
            }
            PrivateKey::P256(key) if alg == SigningAlgorithm::ES256 => key
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            PrivateKey::Ed25519(key) if alg == SigningAlgorithm::EdDSA => {
                Some(key.sign(message).as_ref().to_vec())
            }
            _ => None,
        }
    }
}

/// A new RSA key of `bits` bits (2048, 3072 or 4096).
pub(crate) fn generate_rsa(bits: usize) -> Option<KeyMaterial> {
    use aws_lc_rs::encoding::AsDer as _;
    let size = match bits {
        2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
        3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
        4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
        _ => return None,
    };
    let key = RsaKeyPair::generate(size).ok()?;
    let der = Zeroizing::new(key.as_der().ok()?.as_ref().to_vec());
    KeyMaterial::from_pkcs8_der(&der).ok()
}

/// `true` when `signature` is `alg`'s signature of `message` by `key`.
pub(crate) fn verify(
    key: &PublicParams,
    alg: SigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    match key {
        PublicParams::Rsa { n, e } => {
            let params = match alg {
                SigningAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                SigningAlgorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                SigningAlgorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                SigningAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                SigningAlgorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                SigningAlgorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => return false,
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok()
        }
        PublicParams::P256 { x, y } if alg == SigningAlgorithm::ES256 => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        PublicParams::Ed25519 { x } if alg == SigningAlgorithm::EdDSA => {
            signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, signature)
                .is_ok()
        }
        _ => false,
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    // A SHA-256 digest is 32 bytes.
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap_or([0; 32])
}

/// The HMAC of `message` under `key`.
pub(crate) fn hmac(alg: HmacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    let alg = match alg {
        HmacAlgorithm::HS256 => lc_hmac::HMAC_SHA256,
        HmacAlgorithm::HS384 => lc_hmac::HMAC_SHA384,
        HmacAlgorithm::HS512 => lc_hmac::HMAC_SHA512,
    };
    lc_hmac::sign(&lc_hmac::Key::new(alg, key), message)
        .as_ref()
        .to_vec()
}

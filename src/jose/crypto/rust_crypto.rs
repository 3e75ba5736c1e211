//! JOSE on the RustCrypto crates (feature `rust-crypto`, when `aws-lc-rs` is off): pure Rust,
//! for targets where aws-lc does not build.

use ed25519_dalek::Signer as _;
use ed25519_dalek::Verifier as _;
use rsa::signature::SignatureEncoding as _;
use rsa::{BoxedUint, Pkcs1v15Sign, Pss};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::jose::algorithm::{HmacAlgorithm, SigningAlgorithm};
use crate::jose::key_format::{KeyMaterial, PublicParams, RsaMaterial, significant};

/// A private key, ready to sign.
pub(crate) enum PrivateKey {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey")
    }
}

fn uint(bytes: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(bytes)
}

fn rsa_key(rsa: &RsaMaterial) -> Option<rsa::PrivateKey> {
    let key = rsa::PrivateKey::from_components(
        uint(&rsa.n),
        uint(&rsa.e),
        uint(&rsa.d),
        vec![uint(&rsa.p), uint(&rsa.q)],
    )
    .ok()?;
    key.validate().ok()?;
    Some(key)
}

impl PrivateKey {
    /// The key pair of `material` and its public key; `None` when the numbers are not a
    /// consistent key (RSA), or not a valid scalar (P-256).
    pub(crate) fn new(material: &KeyMaterial) -> Option<(PrivateKey, PublicParams)> {
        match material {
            KeyMaterial::Rsa(rsa) => {
                let key = rsa_key(rsa)?;
                let public = PublicParams::Rsa {
                    n: rsa.n.to_vec(),
                    e: rsa.e.to_vec(),
                };
                Some((PrivateKey::Rsa(Box::new(key)), public))
            }
            KeyMaterial::P256(d) => {
                let key = p256::ecdsa::SigningKey::from_slice(d.as_slice()).ok()?;
                let point = key.verifying_key().to_sec1_point(false);
                let x = point.x()?.as_slice().try_into().ok()?;
                let y = point.y()?.as_slice().try_into().ok()?;
                Some((PrivateKey::P256(key), PublicParams::P256 { x, y }))
            }
            KeyMaterial::Ed25519(seed) => {
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                let x = key.verifying_key().to_bytes();
                Some((PrivateKey::Ed25519(key), PublicParams::Ed25519 { x }))
            }
        }
    }

    /// The JWS signature of `message` with `alg` (of this key's type), as RFC 7518 encodes
    /// it (ES256: the 64 bytes of `r || s`).
    pub(crate) fn sign(&self, alg: SigningAlgorithm, message: &[u8]) -> Option<Vec<u8>> {
        use rsa::{pkcs1v15, pss};
        match self {
            PrivateKey::Rsa(key) => {
                let key = (**key).clone();
                let signature = match alg {
                    SigningAlgorithm::RS256 => {
                        pkcs1v15::SigningKey::<Sha256>::new(key).try_sign(message)
                    }
                    SigningAlgorithm::RS384 => {
                        pkcs1v15::SigningKey::<Sha384>::new(key).try_sign(message)
                    }
                    SigningAlgorithm::RS512 => {
                        pkcs1v15::SigningKey::<Sha512>::new(key).try_sign(message)
                    }
                    SigningAlgorithm::PS256 => {
                        return pss::SigningKey::<Sha256>::new(key)
                            .try_sign(message)
                            .ok()
                            .map(|s| s.to_vec());
                    }
                    SigningAlgorithm::PS384 => {
                        return pss::SigningKey::<Sha384>::new(key)
                            .try_sign(message)
                            .ok()
                            .map(|s| s.to_vec());
                    }
                    SigningAlgorithm::PS512 => {
                        return pss::SigningKey::<Sha512>::new(key)
                            .try_sign(message)
                            .ok()
                            .map(|s| s.to_vec());
                    }
                    SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => return None,
                };
                signature.ok().map(|s| s.to_vec())
            }
            PrivateKey::P256(key) if alg == SigningAlgorithm::ES256 => {
                let signature: p256::ecdsa::Signature = key.try_sign(message).ok()?;
                Some(signature.to_bytes().to_vec())
            }
            PrivateKey::Ed25519(key) if alg == SigningAlgorithm::EdDSA => {
                Some(key.sign(message).to_bytes().to_vec())
            }
            _ => None,
        }
    }
}

/// A new RSA key of `bits` bits.
pub(crate) fn generate_rsa(bits: usize) -> Option<KeyMaterial> {
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
    let mut key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).ok()?;
    key.precompute().ok()?;
    let be =
        |u: &BoxedUint| secrecy::zeroize::Zeroizing::new(significant(&u.to_be_bytes()).to_vec());
    let [p, q] = key.primes() else {
        return None;
    };
    Some(KeyMaterial::Rsa(Box::new(RsaMaterial {
        n: be(key.n().as_ref()),
        e: be(key.e()),
        d: be(key.d()),
        p: be(p),
        q: be(q),
        dp: be(key.dp()?),
        dq: be(key.dq()?),
        qi: be(&key.crt_coefficient()?),
    })))
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
            let Ok(key) = rsa::PublicKey::new_with_size_limits(uint(n), uint(e), 2048..=8192)
            else {
                return false;
            };
            match alg {
                SigningAlgorithm::RS256 => key.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                ),
                SigningAlgorithm::RS384 => key.verify(
                    Pkcs1v15Sign::new::<Sha384>(),
                    &Sha384::digest(message),
                    signature,
                ),
                SigningAlgorithm::RS512 => key.verify(
                    Pkcs1v15Sign::new::<Sha512>(),
                    &Sha512::digest(message),
                    signature,
                ),
                SigningAlgorithm::PS256 => {
                    key.verify(Pss::<Sha256>::new(), &Sha256::digest(message), signature)
                }
                SigningAlgorithm::PS384 => {
                    key.verify(Pss::<Sha384>::new(), &Sha384::digest(message), signature)
                }
                SigningAlgorithm::PS512 => {
                    key.verify(Pss::<Sha512>::new(), &Sha512::digest(message), signature)
                }
                SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => return false,
            }
            .is_ok()
        }
        PublicParams::P256 { x, y } if alg == SigningAlgorithm::ES256 => {
            use p256::ecdsa::signature::Verifier as _;
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            let (Ok(key), Ok(signature)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&point),
                p256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify(message, &signature).is_ok()
        }
        PublicParams::Ed25519 { x } if alg == SigningAlgorithm::EdDSA => {
            let (Ok(key), Ok(signature)) = (
                ed25519_dalek::VerifyingKey::from_bytes(x),
                ed25519_dalek::Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify(message, &signature).is_ok()
        }
        _ => false,
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The HMAC of `message` under `key`.
pub(crate) fn hmac(alg: HmacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn mac<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        m.update(message);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        HmacAlgorithm::HS256 => mac::<hmac::Hmac<Sha256>>(key, message),
        HmacAlgorithm::HS384 => mac::<hmac::Hmac<Sha384>>(key, message),
        HmacAlgorithm::HS512 => mac::<hmac::Hmac<Sha512>>(key, message),
    }
}

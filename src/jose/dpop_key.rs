//! DPoP key material (RFC 9449): the key pair, its public JWK and RFC 7638 thumbprint, the
//! proof header, signing, and the stored form. Making proofs and remembering nonces is
//! `dpop.rs`'s work; the per-use state it needs ([`Usage`]) travels with the key, so that a
//! token carrying its key carries its nonces.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;

/// The signature algorithm of a [`DpopKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DpopAlgorithm {
    /// ECDSA with P-256 and SHA-256: the default, supported by every DPoP server.
    #[default]
    Es256,
    /// Ed25519 (`EdDSA`): the fastest to sign; check that the provider lists it in
    /// `dpop_signing_alg_values_supported`.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for servers that accept nothing else. Generating a
    /// 3072-bit key takes a while; signing is slower than the others.
    Rs256,
}

impl DpopAlgorithm {
    /// The JWS `alg` name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DpopAlgorithm::Es256 => "ES256",
            DpopAlgorithm::EdDsa => "EdDSA",
            DpopAlgorithm::Rs256 => "RS256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(DpopAlgorithm::Es256),
            "EdDSA" => Some(DpopAlgorithm::EdDsa),
            "RS256" => Some(DpopAlgorithm::Rs256),
            _ => None,
        }
    }
}

pub(crate) enum Private {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
    Rs256(Box<rsa::PrivateKey>),
}

/// The key material and everything derived from it once.
pub(crate) struct Material {
    pub(crate) private: Private,
    pub(crate) algorithm: DpopAlgorithm,
    /// The public JWK with only its required members, in lexicographic order: RFC 7638's
    /// input, and the `jwk` header.
    pub(crate) public_jwk: String,
    pub(crate) thumbprint: String,
    /// The proof header, the same for every proof: base64url, ready to sign.
    pub(crate) header: String,
}

/// What one key in use remembers: the `jti` sequence and the servers' nonces.
pub(crate) struct Usage {
    /// Random per key in use, so `jti`s never repeat across keys, processes or restarts.
    pub(crate) jti_prefix: String,
    pub(crate) jti_counter: AtomicU64,
    /// The latest `DPoP-Nonce` per origin (`scheme://host:port`).
    pub(crate) nonces: Mutex<HashMap<String, Arc<str>>>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// A DPoP key pair (RFC 9449): the private key signs a proof for each request, the public
/// key travels in the proof, and the provider binds the tokens it issues to the key's
/// thumbprint.
///
/// Set one with [`OAuthConfigBuilder::dpop`](crate::OAuthConfigBuilder::dpop) (a key
/// generated when the configuration is built) or
/// [`dpop_key`](crate::OAuthConfigBuilder::dpop_key) (your own). A DPoP-bound token carries
/// its key ([`Token::dpop_key`](crate::Token::dpop_key)), and a [`TokenStore`](crate::TokenStore) keeps the key with
/// the login: a public client's refresh token is bound to it, so a restarted app needs it
/// to refresh.
///
/// `Debug` shows the algorithm and the public thumbprint only. Serializing writes the
/// **private key** (PKCS#8, base64url) so that stores can keep it: protect what you
/// serialize, as you protect refresh tokens.
#[derive(Clone)]
pub struct DpopKey {
    pub(crate) material: Arc<Material>,
    pub(crate) usage: Arc<Usage>,
}

/// The PKCS#8 prefix of an Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::config(format!("the OS random number generator failed: {e}")))?;
    Ok(bytes)
}

fn bad_key() -> Error {
    Error::config("not a PKCS#8 P-256, Ed25519 or RSA private key")
}

impl DpopKey {
    /// Generates a new key with the OS random number generator.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the OS random number generator fails.
    pub fn generate(algorithm: DpopAlgorithm) -> Result<DpopKey, Error> {
        let private = match algorithm {
            DpopAlgorithm::Es256 => loop {
                // A random 32-byte string is a valid scalar except with negligible odds.
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random_bytes::<32>()?) {
                    break Private::Es256(key);
                }
            },
            DpopAlgorithm::EdDsa => {
                Private::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>()?))
            }
            DpopAlgorithm::Rs256 => {
                use rsa::Generate as _;
                let key = rsa::PrivateKey::try_generate().map_err(|e| {
                    Error::config(format!("the OS random number generator failed: {e}"))
                })?;
                Private::Rs256(Box::new(key))
            }
        };
        Self::from_private(private)
    }

    /// A key from a PKCS#8 private key in DER (P-256, Ed25519 or RSA).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `der` is not such a key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<DpopKey, Error> {
        use p256::pkcs8::DecodePrivateKey as _;
        if let Some(seed) = der.strip_prefix(&ED25519_PKCS8_PREFIX[..]) {
            let seed: [u8; 32] = seed.try_into().map_err(|_| bad_key())?;
            return Self::from_private(Private::EdDsa(ed25519_dalek::SigningKey::from_bytes(
                &seed,
            )));
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Self::from_private(Private::Es256(key));
        }
        let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| bad_key())?;
        Self::from_private(Private::Rs256(Box::new(key)))
    }

    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` writes).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `pem` is not such a key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<DpopKey, Error> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|rest| rest.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or_else(bad_key)?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad_key())?;
        Self::from_pkcs8_der(&der)
    }

    /// The private key as PKCS#8 DER, to keep it yourself. Handle it as a secret.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        match &self.material.private {
            Private::Es256(key) => {
                use p256::pkcs8::EncodePrivateKey as _;
                key.to_pkcs8_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default()
            }
            Private::EdDsa(key) => {
                let mut der = ED25519_PKCS8_PREFIX.to_vec();
                der.extend_from_slice(key.as_bytes());
                der
            }
            Private::Rs256(key) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                key.to_pkcs8_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default()
            }
        }
    }

    fn from_private(private: Private) -> Result<DpopKey, Error> {
        let (algorithm, public_jwk) = match &private {
            Private::Es256(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(bad_key());
                };
                (
                    DpopAlgorithm::Es256,
                    format!(
                        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                        B64.encode(x),
                        B64.encode(y)
                    ),
                )
            }
            Private::EdDsa(key) => (
                DpopAlgorithm::EdDsa,
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    B64.encode(key.verifying_key().as_bytes())
                ),
            ),
            Private::Rs256(key) => {
                use rsa::traits::PublicKeyParts as _;
                (
                    DpopAlgorithm::Rs256,
                    format!(
                        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                        B64.encode(trim_leading_zeros(&key.e_bytes())),
                        B64.encode(trim_leading_zeros(&key.n_bytes()))
                    ),
                )
            }
        };
        let thumbprint = B64.encode(Sha256::digest(public_jwk.as_bytes()));
        let header = B64.encode(format!(
            r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{public_jwk}}}"#,
            algorithm.as_str()
        ));
        Ok(DpopKey {
            material: Arc::new(Material {
                private,
                algorithm,
                public_jwk,
                thumbprint,
                header,
            }),
            usage: Arc::new(Usage::new(Arc::new(SystemClock))?),
        })
    }

    /// The same key, with `iat` read from `clock` and its own nonce memory.
    pub(crate) fn with_clock(&self, clock: Arc<dyn Clock>) -> Result<DpopKey, Error> {
        Ok(DpopKey {
            material: self.material.clone(),
            usage: Arc::new(Usage::new(clock)?),
        })
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> DpopAlgorithm {
        self.material.algorithm
    }

    /// The JWK SHA-256 thumbprint (RFC 7638), base64url: the `jkt` the provider binds tokens
    /// to (`cnf.jkt`), and the `dpop_jkt` of an authorization request.
    pub fn thumbprint(&self) -> &str {
        &self.material.thumbprint
    }

    /// The public key as a JWK (JSON), as it appears in each proof's header.
    pub fn public_jwk(&self) -> &str {
        &self.material.public_jwk
    }

    /// Signs `input` with the private key: a JWS signature for `alg`.
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.material.private {
            Private::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(input);
                Ok(signature.to_bytes().to_vec())
            }
            Private::EdDsa(key) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(input).to_bytes().to_vec())
            }
            Private::Rs256(key) => key
                .pkcs1v15_sign::<Sha256>(input)
                .map_err(|_| Error::config("cannot sign the DPoP proof with the RSA key")),
        }
    }
}

impl Usage {
    fn new(clock: Arc<dyn Clock>) -> Result<Usage, Error> {
        Ok(Usage {
            jti_prefix: B64.encode(random_bytes::<12>()?),
            jti_counter: AtomicU64::new(0),
            nonces: Mutex::new(HashMap::new()),
            clock,
        })
    }
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    bytes.get(start..).unwrap_or_default()
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("algorithm", &self.material.algorithm)
            .field("thumbprint", &self.material.thumbprint)
            .finish_non_exhaustive()
    }
}

/// Two keys are equal when their public keys are.
impl PartialEq for DpopKey {
    fn eq(&self, other: &Self) -> bool {
        self.material.thumbprint == other.material.thumbprint
    }
}

impl Eq for DpopKey {}

/// The stored form: `{"alg": "ES256", "pkcs8": "<base64url DER>"}`.
#[derive(Serialize, Deserialize)]
struct Stored {
    alg: String,
    pkcs8: String,
}

impl Serialize for DpopKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            alg: self.material.algorithm.as_str().to_owned(),
            pkcs8: B64.encode(self.to_pkcs8_der()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DpopKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = Stored::deserialize(d)?;
        let der = B64
            .decode(stored.pkcs8.as_bytes())
            .map_err(|_| D::Error::custom("the stored DPoP key is not base64url"))?;
        let key = DpopKey::from_pkcs8_der(&der)
            .map_err(|_| D::Error::custom("the stored DPoP key is not a private key"))?;
        if DpopAlgorithm::from_name(&stored.alg) != Some(key.algorithm()) {
            return Err(D::Error::custom(
                "the stored DPoP key does not match its algorithm",
            ));
        }
        Ok(key)
    }
}

/// `true` for a `token_type` of DPoP (case-insensitive, RFC 9449 §5).
pub(crate) fn is_dpop_type(token_type: &str) -> bool {
    token_type.trim().eq_ignore_ascii_case("dpop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_follows_rfc_7638() {
        // RFC 7638 §3.1's example input is an RSA key; the rule is the same for each type:
        // required members only, sorted, no spaces.
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        let jwk: serde_json::Value = serde_json::from_str(key.public_jwk()).unwrap();
        let keys: Vec<_> = jwk.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["crv", "kty", "x", "y"]);
        assert_eq!(
            key.thumbprint(),
            B64.encode(Sha256::digest(key.public_jwk().as_bytes()))
        );
    }

    #[test]
    fn keys_round_trip_through_serde_and_pem() {
        for alg in [DpopAlgorithm::Es256, DpopAlgorithm::EdDsa] {
            let key = DpopKey::generate(alg).unwrap();
            let json = serde_json::to_string(&key).unwrap();
            let back: DpopKey = serde_json::from_str(&json).unwrap();
            assert_eq!(back.thumbprint(), key.thumbprint());
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(key.to_pkcs8_der())
            );
            assert_eq!(
                DpopKey::from_pkcs8_pem(&pem).unwrap().thumbprint(),
                key.thumbprint()
            );
            let shown = format!("{key:?}");
            assert!(!shown.contains(&B64.encode(key.to_pkcs8_der())), "{shown}");
        }
        assert!(serde_json::from_str::<DpopKey>(r#"{"alg":"ES256","pkcs8":"AAAA"}"#).is_err());
    }
}

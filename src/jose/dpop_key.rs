//! DPoP key material (RFC 9449): the key that signs proofs (any [`JwsSigner`]), its public
//! JWK and RFC 7638 thumbprint, the proof header, and the stored form. Making proofs and
//! remembering nonces is `dpop.rs`'s work; the per-use state it needs ([`Usage`]) travels
//! with the key, so that a token carrying its key carries its nonces.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;

use super::algorithm::SigningAlgorithm;
use super::jws::{Signer, encode_part};
use super::public_jwk::PublicJwk;
use super::signer::JwsSigner;
use super::signing_key::{SigningKey, random_bytes};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;

/// The key material and everything derived from it once.
pub(crate) struct Material {
    /// `None` for a key read back from a store whose signer lives elsewhere and is not (yet)
    /// known to this process: see [`external`].
    signer: Option<Signer>,
    public: PublicJwk,
    algorithm: SigningAlgorithm,
    thumbprint: String,
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

/// A DPoP key (RFC 9449): it signs a proof for each request, the public key travels in the
/// proof, and the provider binds the tokens it issues to the key's thumbprint.
///
/// Set one with [`OAuthConfigBuilder::dpop`](crate::OAuthConfigBuilder::dpop) (a key
/// generated when the configuration is built) or
/// [`dpop_key`](crate::OAuthConfigBuilder::dpop_key) (your own: generated, read from PKCS#8,
/// or any [`JwsSigner`] with [`from_signer`](DpopKey::from_signer), so the private key can
/// stay in an HSM or a key service). A DPoP-bound token carries its key
/// ([`Token::dpop_key`](crate::Token::dpop_key)), and a [`TokenStore`](crate::TokenStore)
/// keeps the key with the login: a public client's refresh token is bound to it, so a
/// restarted app needs it to refresh.
///
/// `Debug` shows the algorithm and the public thumbprint only. Serializing an in-memory key
/// writes the **private key** (PKCS#8, base64url) so that stores can keep it: protect what
/// you serialize, as you protect refresh tokens. A key from
/// [`from_signer`](DpopKey::from_signer) serializes as its public key only.
#[derive(Clone)]
pub struct DpopKey {
    pub(crate) material: Arc<Material>,
    pub(crate) usage: Arc<Usage>,
}

impl DpopKey {
    /// Generates a new in-memory key for `algorithm` (see [`SigningKey::generate`]; ES256,
    /// the default, is accepted by every DPoP server).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the OS random number generator fails.
    pub fn generate(algorithm: SigningAlgorithm) -> Result<DpopKey, Error> {
        Self::from_signer(SigningKey::generate(algorithm)?)
    }

    /// A key that signs through `signer`: a [`SigningKey`], or a key in an HSM or a key service.
    ///
    /// A login stored with a key that is not a [`SigningKey`] keeps only the public key; when a
    /// store gives the login back, the key is found again by its thumbprint among the
    /// `DpopKey`s this process made with `from_signer` (and still holds): make the key at
    /// start-up, as you configure it. Until it is found, proofs fail with
    /// [`Error::Config`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the signer's algorithm does not fit its public key.
    pub fn from_signer(signer: impl JwsSigner + 'static) -> Result<DpopKey, Error> {
        let signer = Signer::new(signer)?;
        if let Signer::External(external) = &signer {
            remember(external);
        }
        Self::from_parts(Some(signer), None)
    }

    /// A key from a PKCS#8 private key in DER (P-256, Ed25519 or RSA).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `der` is not such a key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<DpopKey, Error> {
        Self::from_signer(SigningKey::from_pkcs8_der(der)?)
    }

    /// A key from a PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey`
    /// writes; the other forms [`SigningKey::from_pem`] reads work too).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `pem` is not such a key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<DpopKey, Error> {
        Self::from_signer(SigningKey::from_pem(pem.as_bytes())?)
    }

    /// The private key as PKCS#8 DER, to keep it yourself. Handle it as a secret. `None` for a
    /// key whose private part is not in this process ([`from_signer`](DpopKey::from_signer)
    /// with a remote signer).
    pub fn to_pkcs8_der(&self) -> Option<Vec<u8>> {
        match &self.material.signer {
            Some(Signer::Local(key)) => key.to_pkcs8_der().ok().map(|der| der.to_vec()),
            _ => None,
        }
    }

    /// `signer`, or, for a key read back without one, its public key.
    fn from_parts(signer: Option<Signer>, public: Option<PublicJwk>) -> Result<DpopKey, Error> {
        let (public, algorithm) = match (&signer, public) {
            (Some(signer), _) => (signer.public_jwk().clone(), signer.algorithm()),
            (None, Some(public)) => {
                let alg = public
                    .algorithm()
                    .ok_or_else(|| Error::config("a stored DPoP key names no algorithm"))?;
                (public, alg)
            }
            (None, None) => return Err(Error::config("a DPoP key needs a signer")),
        };
        // RFC 9449 §4.2: `typ`, `alg`, and the public key alone (no `kid`, `use` or `alg`).
        let header = encode_part(&json!({
            "typ": "dpop+jwt",
            "alg": algorithm.as_str(),
            "jwk": public.members(),
        }))?;
        Ok(DpopKey {
            material: Arc::new(Material {
                signer,
                thumbprint: public.thumbprint(),
                public: public.with_algorithm(algorithm)?,
                algorithm,
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
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.material.algorithm
    }

    /// The JWK SHA-256 thumbprint (RFC 7638), base64url: the `jkt` the provider binds tokens
    /// to (`cnf.jkt`), and the `dpop_jkt` of an authorization request.
    pub fn thumbprint(&self) -> &str {
        &self.material.thumbprint
    }

    /// The public key, as each proof's header carries it (its members only).
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.material.public
    }

    /// A compact JWS of `claims_json` under the proof header: the signature is the signer's.
    pub(crate) async fn sign_proof(&self, claims_json: &[u8]) -> Result<String, Error> {
        match &self.material.signer {
            Some(signer) => {
                signer
                    .sign_compact(&self.material.header, claims_json)
                    .await
            }
            None => {
                let signer = external(&self.material.thumbprint).ok_or_else(|| {
                    Error::config(
                        "the DPoP key of this stored login is held by a signer this process has \
                         not made a DpopKey of (DpopKey::from_signer)",
                    )
                })?;
                Signer::External(signer)
                    .sign_compact(&self.material.header, claims_json)
                    .await
            }
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

/// The external signers of this process's DPoP keys, by thumbprint: how a login read back from
/// a store finds its key again. Weak, so the map never keeps a signer alive.
static EXTERNAL: Mutex<BTreeMap<String, Weak<dyn JwsSigner>>> = Mutex::new(BTreeMap::new());

fn remember(signer: &Arc<dyn JwsSigner>) {
    let mut known = EXTERNAL.lock().unwrap_or_else(PoisonError::into_inner);
    known.retain(|_, s| s.strong_count() > 0);
    known.insert(signer.public_jwk().thumbprint(), Arc::downgrade(signer));
}

fn external(thumbprint: &str) -> Option<Arc<dyn JwsSigner>> {
    EXTERNAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(thumbprint)
        .and_then(Weak::upgrade)
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

/// The stored form: `{"alg": "ES256", "pkcs8": "<base64url DER>"}` for an in-memory key,
/// `{"alg": "ES256", "jwk": {...}}` (the public key) for one held by an external signer.
#[derive(Serialize, Deserialize)]
struct Stored {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkcs8: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<serde_json::Value>,
}

impl Serialize for DpopKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pkcs8 = self.to_pkcs8_der().map(|der| B64.encode(der));
        Stored {
            alg: self.material.algorithm.as_str().to_owned(),
            jwk: pkcs8.is_none().then(|| self.material.public.members()),
            pkcs8,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DpopKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = Stored::deserialize(d)?;
        let alg = SigningAlgorithm::from_name(&stored.alg)
            .ok_or_else(|| D::Error::custom("the stored DPoP key names an unknown algorithm"))?;
        let key = match (stored.pkcs8, stored.jwk) {
            (Some(pkcs8), _) => {
                let der = secrecy::zeroize::Zeroizing::new(
                    B64.decode(pkcs8.as_bytes())
                        .map_err(|_| D::Error::custom("the stored DPoP key is not base64url"))?,
                );
                let key = SigningKey::from_pkcs8_der(&der)
                    .and_then(|k| k.with_algorithm(alg))
                    .map_err(|_| D::Error::custom("the stored DPoP key is not a private key"))?;
                DpopKey::from_signer(key)
            }
            (None, Some(jwk)) => {
                let public = PublicJwk::from_value(&jwk)
                    .ok()
                    .and_then(|p| p.with_algorithm(alg).ok())
                    .ok_or_else(|| D::Error::custom("the stored DPoP key is not a public key"))?;
                let signer = external(&public.thumbprint()).map(Signer::External);
                DpopKey::from_parts(signer, Some(public))
            }
            (None, None) => return Err(D::Error::custom("the stored DPoP key has no key")),
        };
        let key = key.map_err(|_| D::Error::custom("the stored DPoP key is not usable"))?;
        if key.algorithm() != alg {
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
    fn the_header_carries_the_public_key_and_the_thumbprint_follows_rfc_7638() {
        let key = DpopKey::generate(SigningAlgorithm::ES256).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(&key.material.header).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        let members: Vec<_> = header["jwk"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(members, ["crv", "kty", "x", "y"]);
        let digest = super::super::crypto::sha256(header["jwk"].to_string().as_bytes());
        assert_eq!(key.thumbprint(), B64.encode(digest));
    }

    #[test]
    fn keys_round_trip_through_serde_and_pem() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let key = DpopKey::generate(alg).unwrap();
            let json = serde_json::to_string(&key).unwrap();
            let back: DpopKey = serde_json::from_str(&json).unwrap();
            assert_eq!(back.thumbprint(), key.thumbprint());
            let der = key.to_pkcs8_der().unwrap();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(&der)
            );
            assert_eq!(
                DpopKey::from_pkcs8_pem(&pem).unwrap().thumbprint(),
                key.thumbprint()
            );
            let shown = format!("{key:?}");
            assert!(!shown.contains(&B64.encode(&der)), "{shown}");
        }
        assert!(serde_json::from_str::<DpopKey>(r#"{"alg":"ES256","pkcs8":"AAAA"}"#).is_err());
        assert!(serde_json::from_str::<DpopKey>(r#"{"alg":"ES256"}"#).is_err());
    }
}

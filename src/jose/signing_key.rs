//! Private keys that sign the JWTs this crate sends: `private_key_jwt` client assertions,
//! JWT bearer grants, and (for the DPoP work) proofs.
//!
//! The JOSE work is `jsonwebtoken` (the crate that already verifies ID tokens); `rsa` and `p256`
//! are used only to read key formats it does not (SEC1 EC keys, private JWKs), in the versions
//! it already pulls in.

use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;
use serde::Serialize;
use serde_json::Value;

use super::install_crypto_provider;
use crate::error::Error;

/// A JWS algorithm a [`SigningKey`] signs with.
///
/// Each key type has a default ([`SigningKey::algorithm`]); an RSA key may sign with any of the
/// RSA algorithms ([`SigningKey::with_algorithm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// ECDSA on P-256 with SHA-256: the algorithm of P-256 keys.
    ES256,
    /// Ed25519: the algorithm of Ed25519 keys.
    EdDSA,
}

/// The kind of a key, which decides the algorithms it can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    Ed25519,
}

impl SigningAlgorithm {
    const ALL: [SigningAlgorithm; 8] = [
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

    fn key_type(self) -> KeyType {
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

    pub(crate) fn jose(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::RS384 => Algorithm::RS384,
            SigningAlgorithm::RS512 => Algorithm::RS512,
            SigningAlgorithm::PS256 => Algorithm::PS256,
            SigningAlgorithm::PS384 => Algorithm::PS384,
            SigningAlgorithm::PS512 => Algorithm::PS512,
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key that signs JWTs: RSA (2048 bits or more), EC P-256 or Ed25519.
///
/// Load one with [`from_pem`](SigningKey::from_pem) or [`from_jwk`](SigningKey::from_jwk),
/// name it with [`with_kid`](SigningKey::with_kid) (the `kid` the provider registered; most
/// providers need it to pick the key), and hand it to
/// [`OAuthConfigBuilder::private_key`](crate::OAuthConfigBuilder::private_key). Register
/// [`public_jwk`](SigningKey::public_jwk) (or the certificate) with the provider.
///
/// Cloning is cheap (the key is shared). `Debug` shows only the algorithm and the `kid`; no
/// error this type returns contains key material.
///
/// ```
/// # fn run() -> Result<(), authed::Error> {
/// # let pem = include_bytes!("../../tests/support/keys/ec_pkcs8.pem");
/// let key = authed::SigningKey::from_pem(pem)?.with_kid("key-2026-01");
/// assert_eq!(key.algorithm(), authed::SigningAlgorithm::ES256);
/// assert_eq!(key.public_jwk()["kid"], "key-2026-01");
/// # Ok(()) }
/// # run().unwrap();
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    // `EncodingKey` zeroizes its bytes on drop.
    encoding: EncodingKey,
    key_type: KeyType,
    algorithm: SigningAlgorithm,
    kid: Option<String>,
    x5t_s256: Option<String>,
    /// The public key alone (`kty` and its parameters), as computed from the private key.
    public: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself is left out: it is the secret.
        f.debug_struct("SigningKey")
            .field("algorithm", &self.inner.algorithm)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn ed25519_pkcs8(seed: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&ED25519_PKCS8_PREFIX);
    der.extend_from_slice(seed);
    der
}

/// The first PEM block whose label ends in `PRIVATE KEY`: its label and base64 body. A file
/// holding a certificate and its key (common for Entra certificate credentials) works too.
fn private_pem_block(text: &str) -> Option<(&str, String)> {
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker)?;
        if label.ends_with("PRIVATE KEY") {
            let body: String = body_start[..body_end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            return Some((label, body));
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    None
}

fn b64url(field: &str, value: Option<&Value>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| Error::config(format!("private JWK: `{field}` is missing")))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map(Zeroizing::new)
        .map_err(|_| Error::config(format!("private JWK: `{field}` is not base64url")))
}

impl SigningKey {
    /// Reads a PEM private key and detects its type: RSA (PKCS#1 `RSA PRIVATE KEY` or PKCS#8),
    /// EC P-256 (SEC1 `EC PRIVATE KEY` or PKCS#8) or Ed25519 (PKCS#8). Other PEM blocks in the
    /// input (a certificate next to the key) are skipped.
    ///
    /// The algorithm is RS256, ES256 or EdDSA by key type; the key has no `kid` until
    /// [`with_kid`](SigningKey::with_kid).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the input holds no private key, the key is encrypted, of another
    /// type or curve, an RSA key shorter than 2048 bits, or damaged. The message names the
    /// problem, never the key.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, Error> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::config("signing key: the PEM input is not text"))?;
        let (label, body) = private_pem_block(text)
            .ok_or_else(|| Error::config("signing key: no PEM private key block found"))?;
        let body = Zeroizing::new(body);
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| Error::config("signing key: the PEM body is not base64"))?,
        );
        match label {
            "RSA PRIVATE KEY" => Self::from_parts(EncodingKey::from_rsa_der(&der), KeyType::Rsa),
            "EC PRIVATE KEY" => {
                use p256::pkcs8::EncodePrivateKey as _;
                let secret = p256::SecretKey::from_sec1_der(&der).map_err(|_| {
                    Error::config("signing key: the EC key is damaged or not on curve P-256")
                })?;
                let pkcs8 = secret
                    .to_pkcs8_der()
                    .map_err(|_| Error::config("signing key: the EC key cannot be encoded"))?;
                Self::from_parts(EncodingKey::from_ec_der(pkcs8.as_bytes()), KeyType::P256)
            }
            "PRIVATE KEY" => {
                let block = Zeroizing::new(format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    body.as_str()
                ));
                // jsonwebtoken reads the algorithm OID of the PKCS#8 wrapper; only the right
                // reader accepts the key.
                if let Ok(key) = EncodingKey::from_rsa_pem(block.as_bytes()) {
                    Self::from_parts(key, KeyType::Rsa)
                } else if let Ok(key) = EncodingKey::from_ec_pem(block.as_bytes()) {
                    Self::from_parts(key, KeyType::P256)
                } else if EncodingKey::from_ed_pem(block.as_bytes()).is_ok() {
                    // PKCS#8 v2 (RFC 5958) appends the public key; keep the v1 part, which is
                    // what the signer reads.
                    let seed = match (der.get(2..16), der.get(16..48)) {
                        (Some(head), Some(seed))
                            if head.get(..2) == Some(&[0x02, 0x01][..])
                                && head.get(3..) == ED25519_PKCS8_PREFIX.get(5..) =>
                        {
                            seed
                        }
                        _ => return Err(Error::config("signing key: the Ed25519 key is damaged")),
                    };
                    Self::from_parts(
                        EncodingKey::from_ed_der(&ed25519_pkcs8(seed)),
                        KeyType::Ed25519,
                    )
                } else {
                    Err(Error::config(
                        "signing key: unsupported PKCS#8 key (use RSA, EC P-256 or Ed25519)",
                    ))
                }
            }
            "ENCRYPTED PRIVATE KEY" => Err(Error::config(
                "signing key: the PEM key is encrypted; decrypt it first \
                 (openssl pkcs8 -in key.pem -nocrypt)",
            )),
            _ => Err(Error::config(
                "signing key: unsupported PEM block (use PRIVATE KEY, RSA PRIVATE KEY or EC \
                 PRIVATE KEY)",
            )),
        }
    }

    /// Reads a private JWK (RFC 7517, with its private part `d`): `kty` `RSA` (with `p` and
    /// `q`), `EC` on `P-256`, or `OKP` on `Ed25519`. Its `kid` and `alg`, when present, become
    /// the key's.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the text is not a JSON object, a member is missing or malformed,
    /// the public members do not match the private key, or the key type, curve or `alg` is
    /// not supported. The message names the member, never its value.
    pub fn from_jwk(jwk: &str) -> Result<SigningKey, Error> {
        let jwk = Zeroizing::new(jwk.to_owned());
        let value: Value = serde_json::from_str(&jwk)
            .map_err(|_| Error::config("private JWK: not a JSON object"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| Error::config("private JWK: not a JSON object"))?;
        if !obj.contains_key("d") {
            return Err(Error::config(
                "private JWK: no private part `d` (this is a public key)",
            ));
        }
        let str_of = |name: &str| obj.get(name).and_then(Value::as_str);
        let key = match str_of("kty") {
            Some("RSA") => {
                use rsa::BoxedUint;
                use rsa::pkcs1::EncodeRsaPrivateKey as _;
                let int = |name: &str| {
                    b64url(name, obj.get(name)).map(|b| BoxedUint::from_be_slice_vartime(&b))
                };
                let private = rsa::PrivateKey::from_components(
                    int("n")?,
                    int("e")?,
                    int("d")?,
                    vec![int("p")?, int("q")?],
                )
                .map_err(|_| Error::config("private JWK: the RSA key is inconsistent"))?;
                let der = private
                    .to_pkcs1_der()
                    .map_err(|_| Error::config("private JWK: the RSA key cannot be encoded"))?;
                Self::from_parts(EncodingKey::from_rsa_der(der.as_bytes()), KeyType::Rsa)?
            }
            Some("EC") => {
                use p256::pkcs8::EncodePrivateKey as _;
                if str_of("crv") != Some("P-256") {
                    return Err(Error::config(
                        "private JWK: only EC keys on curve P-256 are supported",
                    ));
                }
                let d = b64url("d", obj.get("d"))?;
                let secret = p256::SecretKey::from_slice(&d)
                    .map_err(|_| Error::config("private JWK: `d` is not a P-256 private key"))?;
                let pkcs8 = secret
                    .to_pkcs8_der()
                    .map_err(|_| Error::config("private JWK: the EC key cannot be encoded"))?;
                Self::from_parts(EncodingKey::from_ec_der(pkcs8.as_bytes()), KeyType::P256)?
            }
            Some("OKP") => {
                if str_of("crv") != Some("Ed25519") {
                    return Err(Error::config(
                        "private JWK: only OKP keys on curve Ed25519 are supported",
                    ));
                }
                let d = b64url("d", obj.get("d"))?;
                if d.len() != 32 {
                    return Err(Error::config(
                        "private JWK: `d` is not an Ed25519 private key",
                    ));
                }
                Self::from_parts(
                    EncodingKey::from_ed_der(&ed25519_pkcs8(&d)),
                    KeyType::Ed25519,
                )?
            }
            Some(_) => {
                return Err(Error::config(
                    "private JWK: unsupported `kty` (use RSA, EC or OKP)",
                ));
            }
            None => return Err(Error::config("private JWK: `kty` is missing")),
        };
        // The public members, when given, must be this private key's: a mismatch means the
        // provider holds another key than the one that would sign.
        let public = serde_json::to_value(&key.inner.public).unwrap_or_default();
        for member in ["n", "e", "x", "y"] {
            if let Some(given) = obj.get(member) {
                let ours = public.get(member);
                let same = match (given.as_str(), ours.and_then(Value::as_str)) {
                    (Some(g), Some(o)) => g.trim_end_matches('=') == o,
                    _ => false,
                };
                if !same {
                    return Err(Error::config(format!(
                        "private JWK: `{member}` does not match the private key"
                    )));
                }
            }
        }
        let mut key = key;
        if let Some(kid) = str_of("kid") {
            key = key.with_kid(kid);
        }
        if let Some(alg) = str_of("alg") {
            let alg = SigningAlgorithm::from_name(alg)
                .ok_or_else(|| Error::config("private JWK: unsupported `alg`"))?;
            key = key.with_algorithm(alg)?;
        }
        Ok(key)
    }

    fn from_parts(encoding: EncodingKey, key_type: KeyType) -> Result<SigningKey, Error> {
        install_crypto_provider();
        let algorithm = match key_type {
            KeyType::Rsa => SigningAlgorithm::RS256,
            KeyType::P256 => SigningAlgorithm::ES256,
            KeyType::Ed25519 => SigningAlgorithm::EdDSA,
        };
        // Deriving the public key parses the private one: a damaged key fails here, at load
        // time, rather than at the first request.
        let mut public = Jwk::from_encoding_key(&encoding, algorithm.jose()).map_err(|_| {
            Error::config(match key_type {
                KeyType::Rsa => "signing key: the RSA key is damaged",
                KeyType::P256 => "signing key: the EC key is damaged or not on curve P-256",
                KeyType::Ed25519 => "signing key: the Ed25519 key is damaged",
            })
        })?;
        public.common.key_algorithm = None;
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &public.algorithm {
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .unwrap_or_default();
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if bits < 2048 {
                return Err(Error::config(
                    "signing key: RSA keys must have at least 2048 bits",
                ));
            }
        }
        Ok(SigningKey {
            inner: Arc::new(Inner {
                encoding,
                key_type,
                algorithm,
                kid: None,
                x5t_s256: None,
                public,
            }),
        })
    }

    fn update(mut self, change: impl FnOnce(&mut Inner)) -> SigningKey {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// Names the key: the `kid` header of every JWT it signs, and the `kid` of
    /// [`public_jwk`](SigningKey::public_jwk). Use the key id the provider registered.
    pub fn with_kid(self, kid: impl Into<String>) -> SigningKey {
        let kid = kid.into();
        self.update(|inner| inner.kid = Some(kid))
    }

    /// Signs with `algorithm` instead of the key type's default: PS256 (or RS384, …) for an
    /// RSA key. Discovery may also pick one the provider lists.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the key cannot sign with `algorithm` (ES256 with an RSA key).
    pub fn with_algorithm(self, algorithm: SigningAlgorithm) -> Result<SigningKey, Error> {
        if algorithm.key_type() != self.inner.key_type {
            return Err(Error::config(format!(
                "signing key: a {} key cannot sign {algorithm}",
                match self.inner.key_type {
                    KeyType::Rsa => "RSA",
                    KeyType::P256 => "P-256",
                    KeyType::Ed25519 => "Ed25519",
                }
            )));
        }
        Ok(self.update(|inner| inner.algorithm = algorithm))
    }

    /// Adds the `x5t#S256` header (the base64url SHA-256 of the certificate's DER) to every JWT
    /// this key signs: what Microsoft Entra uses to find a certificate credential. `certificate`
    /// is the PEM (or DER) certificate registered with the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `certificate` is neither a PEM certificate nor DER.
    pub fn with_certificate(self, certificate: &[u8]) -> Result<SigningKey, Error> {
        let der = match std::str::from_utf8(certificate) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
                let start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or(0) + 27;
                let end = text[start..]
                    .find("-----END CERTIFICATE-----")
                    .ok_or_else(|| Error::config("certificate: the PEM block is not closed"))?;
                let body: String = text[start..start + end]
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|_| Error::config("certificate: the PEM body is not base64"))?
            }
            _ if certificate.first() == Some(&0x30) => certificate.to_vec(),
            _ => return Err(Error::config("certificate: neither PEM nor DER")),
        };
        let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(&der));
        Ok(self.update(|inner| inner.x5t_s256 = Some(thumbprint)))
    }

    /// The algorithm every JWT this key signs carries in its `alg` header.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.inner.algorithm
    }

    /// The key's `kid`, if one was set.
    pub fn kid(&self) -> Option<&str> {
        self.inner.kid.as_deref()
    }

    /// The public key as a JWK (`kty` and its public parameters, `use: "sig"`, `alg`, and `kid`
    /// when set): what to register with the provider, in a JWKS
    /// (`{"keys": [key.public_jwk()]}`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.inner.public.clone();
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(self.inner.algorithm.jose().into());
        jwk.common.key_id = self.inner.kid.clone();
        serde_json::to_value(&jwk).unwrap_or_default()
    }

    /// The public key alone (no `kid`, `use` or `alg`): the `jwk` header of a DPoP proof.
    #[allow(dead_code)] // used by the DPoP proofs
    pub(crate) fn jwk(&self) -> &Jwk {
        &self.inner.public
    }

    /// The RFC 7638 JWK thumbprint of the public key (SHA-256, base64url): a `kid` that
    /// follows from the key, and the `jkt` of DPoP.
    pub fn thumbprint(&self) -> String {
        install_crypto_provider();
        // RSA, P-256 and Ed25519 JWKs all have thumbprints; this cannot fail for our keys.
        self.inner
            .public
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap_or_default()
    }

    /// A header with this key's `alg`, and its `kid` and `x5t#S256` when set.
    pub(crate) fn header(&self) -> Header {
        let mut header = Header::new(self.inner.algorithm.jose());
        header.kid = self.inner.kid.clone();
        header.x5t_s256 = self.inner.x5t_s256.clone();
        header
    }

    /// Signs `claims` under `header` (start from [`header`](SigningKey::header)); the header's
    /// `alg` is always the key's.
    pub(crate) fn sign(
        &self,
        mut header: Header,
        claims: &impl Serialize,
    ) -> Result<SecretString, Error> {
        install_crypto_provider();
        header.alg = self.inner.algorithm.jose();
        jsonwebtoken::encode(&header, claims, &self.inner.encoding)
            .map(SecretString::from)
            .map_err(|_| Error::config("signing key: signing failed"))
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use rsa::sha2::Digest as _;
    rsa::sha2::Sha256::digest(data).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const RSA8: &str = include_str!("../../tests/support/keys/rsa_pkcs8.pem");
    const RSA1: &str = include_str!("../../tests/support/keys/rsa_pkcs1.pem");
    const RSA_JWK: &str = include_str!("../../tests/support/keys/rsa_pkcs8.jwk.json");
    const RSA_PUB: &str = include_str!("../../tests/support/keys/rsa_pkcs8.pub.jwk.json");
    const EC8: &str = include_str!("../../tests/support/keys/ec_pkcs8.pem");
    const EC1: &str = include_str!("../../tests/support/keys/ec_sec1.pem");
    const EC_JWK: &str = include_str!("../../tests/support/keys/ec_pkcs8.jwk.json");
    const EC_PUB: &str = include_str!("../../tests/support/keys/ec_pkcs8.pub.jwk.json");
    const ED: &str = include_str!("../../tests/support/keys/ed25519.pem");
    const ED_JWK: &str = include_str!("../../tests/support/keys/ed25519.jwk.json");
    const ED_PUB: &str = include_str!("../../tests/support/keys/ed25519.pub.jwk.json");

    // Computed independently with Node (SHA-256 of the RFC 7638 member JSON).
    const RSA_THUMB: &str = "_YFm8Mm1o-ZGdvgSnU5BY-cpezHwVUWuf6TjwCxVy9Q";
    const EC_THUMB: &str = "EPN8QYKSsu1vQWUsdN8hH6BLw34UNFFG7E9i9fSRI34";
    const ED_THUMB: &str = "eGV29zGbITFzkh5SE8epQK4MVdu7lvEGIHmmYCcwpJw";

    /// Signs a JWT with `key` and verifies it with the public JWK Node exported.
    fn round_trip(key: &SigningKey, public: &str) {
        use secrecy::ExposeSecret as _;
        let jwt = key
            .sign(key.header(), &serde_json::json!({"sub": "me"}))
            .unwrap();
        let jwk: Jwk = serde_json::from_str(public).unwrap();
        let mut validation = Validation::new(key.algorithm().jose());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(
            jwt.expose_secret(),
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "me");
        assert_eq!(data.header.kid.as_deref(), key.kid());
    }

    fn public_members(jwk: &Value) -> Value {
        let mut jwk = jwk.clone();
        let obj = jwk.as_object_mut().unwrap();
        obj.retain(|k, _| ["kty", "n", "e", "crv", "x", "y"].contains(&k.as_str()));
        jwk
    }

    fn check(key: SigningKey, alg: SigningAlgorithm, public: &str, thumb: &str) {
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.thumbprint(), thumb);
        let expected: Value = serde_json::from_str(public).unwrap();
        assert_eq!(public_members(&key.public_jwk()), expected);
        round_trip(&key, public);
        round_trip(&key.clone().with_kid("k1"), public);
    }

    #[test]
    fn rsa_pem_pkcs8_and_pkcs1() {
        for pem in [RSA8, RSA1] {
            let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
            check(key, SigningAlgorithm::RS256, RSA_PUB, RSA_THUMB);
        }
    }

    #[test]
    fn rsa_jwk_and_ps256() {
        let key = SigningKey::from_jwk(RSA_JWK).unwrap();
        check(key.clone(), SigningAlgorithm::RS256, RSA_PUB, RSA_THUMB);
        let ps = key.with_algorithm(SigningAlgorithm::PS256).unwrap();
        check(ps.clone(), SigningAlgorithm::PS256, RSA_PUB, RSA_THUMB);
        assert_eq!(ps.public_jwk()["alg"], "PS256");
        assert!(ps.with_algorithm(SigningAlgorithm::ES256).is_err());
    }

    #[test]
    fn p256_pem_pkcs8_sec1_and_jwk() {
        for key in [
            SigningKey::from_pem(EC8.as_bytes()).unwrap(),
            SigningKey::from_pem(EC1.as_bytes()).unwrap(),
            SigningKey::from_jwk(EC_JWK).unwrap(),
        ] {
            check(key, SigningAlgorithm::ES256, EC_PUB, EC_THUMB);
        }
    }

    #[test]
    fn ed25519_pem_and_jwk() {
        for key in [
            SigningKey::from_pem(ED.as_bytes()).unwrap(),
            SigningKey::from_jwk(ED_JWK).unwrap(),
        ] {
            check(key, SigningAlgorithm::EdDSA, ED_PUB, ED_THUMB);
        }
    }

    #[test]
    fn jwk_kid_and_alg_are_taken() {
        let mut jwk: Value = serde_json::from_str(EC_JWK).unwrap();
        jwk["kid"] = "ec-1".into();
        jwk["alg"] = "ES256".into();
        let key = SigningKey::from_jwk(&jwk.to_string()).unwrap();
        assert_eq!(key.kid(), Some("ec-1"));
        jwk["alg"] = "RS256".into();
        assert!(SigningKey::from_jwk(&jwk.to_string()).is_err());
    }

    #[test]
    fn key_next_to_a_certificate_is_found() {
        let text = format!("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n{EC8}");
        let key = SigningKey::from_pem(text.as_bytes()).unwrap();
        assert_eq!(key.thumbprint(), EC_THUMB);
    }

    #[test]
    fn bad_input_is_a_config_error_without_key_material() {
        let d = serde_json::from_str::<Value>(EC_JWK).unwrap()["d"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut wrong_x: Value = serde_json::from_str(EC_JWK).unwrap();
        wrong_x["x"] = serde_json::from_str::<Value>(ED_PUB).unwrap()["x"].clone();
        let public_only = EC_PUB.to_owned();
        let cases = [
            SigningKey::from_pem(b"not a key").unwrap_err(),
            SigningKey::from_pem(EC_PUB.as_bytes()).unwrap_err(),
            SigningKey::from_pem(
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            )
            .unwrap_err(),
            SigningKey::from_pem(
                b"-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n",
            )
            .unwrap_err(),
            SigningKey::from_jwk(&public_only).unwrap_err(),
            SigningKey::from_jwk(&wrong_x.to_string()).unwrap_err(),
            SigningKey::from_jwk("[1]").unwrap_err(),
            SigningKey::from_jwk(r#"{"kty":"oct","k":"c2VjcmV0","d":"x"}"#).unwrap_err(),
        ];
        for err in cases {
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&d), "{text}");
        }
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let short = "-----BEGIN PRIVATE KEY-----\n\
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALfckVCJJ1XTI9RA\n\
6dPB+D7fSPEtrexzZ++SLwmOdtoz43w5s1sqCj4RgU2sgslMKA+0rA+6rvhlBZ99\n\
f7ztHp8EiZFTlnnfNH7wg1G8KSGx1x7eTSSMgox50PiFHT/MbYE5Ulz69hvCCZ7y\n\
WXLhNgu58lrgdxzxFTUCaRDxrnsrAgMBAAECgYEAjR1g+qsJ4blX+oSH8tshKUA+\n\
v70LjDtXPmy4ZWFOn1LL+oBexE2T5ueQkokhKFanOMa2eKwTttnyYuLzs5Faueux\n\
i0/rwgq47sepcLRkKZJMa8oUKYWZE36KiD57IQTQPBiEWuK4/cKG1uj4tUcoVa3H\n\
fuJ046u0ZUSPbU/jO0ECQQDq3NGhsqymqDRa4RXX1AjHYxuWqnwfFI7f0EkQhlXb\n\
yHOIHnnGC8yep6xkHfkwrUdnG+5A9dukOmk+aJ59iQLjAkEAyGiyk7Qx6ycVtk6U\n\
6FFxevajdopFcElxVoGOiBh0EX71la0z+JNBqeyzBQruR5oGre7ZsMT+xInEShhr\n\
So1xGQJAPD3Ln3gfBNhcJXtaiPOgFNR8/RZZo/c39nyMYSqz1x4BVEbM4VmhcIh9\n\
lWiCxFON3wqxAASQA/3fhNx82qJMFQJACSu5WEb7rc4ZEUGhUMxBTCYzLr5/FPdX\n\
Z2UAV7v+u7o6lMHbSfm7HIKHYqiwZLhoq9btQUiSe/3t7JIXfs7gKQJAMpIqWLbA\n\
cWxSis7sjmYNr1f9LbzuS126PhOX//uT0J50pZpfvgK7SAMnG1NfpDXl8AZxBm3F\n\
c/GK51aaWeTDDQ==\n\
-----END PRIVATE KEY-----\n";
        let err = SigningKey::from_pem(short.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("2048"), "{err}");
    }

    #[test]
    fn debug_shows_only_alg_and_kid() {
        let key = SigningKey::from_pem(ED.as_bytes()).unwrap().with_kid("k9");
        let d = serde_json::from_str::<Value>(ED_JWK).unwrap()["d"]
            .as_str()
            .unwrap()
            .to_owned();
        let text = format!("{key:?}");
        assert_eq!(
            text,
            r#"SigningKey { algorithm: EdDSA, kid: Some("k9"), .. }"#
        );
        assert!(!text.contains(&d));
    }

    #[test]
    fn certificate_thumbprint_matches_openssl() {
        // `openssl x509 -outform DER | openssl dgst -sha256 -binary | base64url`
        let cert = include_str!("../../tests/support/keys/ec_cert.pem");
        let key = SigningKey::from_pem(format!("{cert}{EC8}").as_bytes())
            .unwrap()
            .with_certificate(cert.as_bytes())
            .unwrap();
        assert_eq!(
            key.header().x5t_s256.as_deref(),
            Some("ysfMNqXBRgrgGclTMRZcxbLs3LGvx-kvlg9l1RGCWcA")
        );
        assert_eq!(key.thumbprint(), EC_THUMB);
    }

    #[test]
    fn certificate_thumbprint_header() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x00];
        let key = SigningKey::from_pem(EC8.as_bytes())
            .unwrap()
            .with_certificate(&der)
            .unwrap();
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(&der));
        assert_eq!(key.header().x5t_s256.as_deref(), Some(expected.as_str()));
    }
}

//! [`SigningKey`]: a private key held in this process, the in-memory [`JwsSigner`]. Read from
//! PEM, PKCS#8 or a private JWK (`key_format`), or generated; signs on the JOSE crypto backend
//! with the key pair parsed once.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use secrecy::zeroize::Zeroizing;
use serde_json::Value;

use super::algorithm::{KeyType, SigningAlgorithm};
use super::crypto;
use super::key_format::{KeyMaterial, bit_length};
use super::public_jwk::PublicJwk;
use super::signer::JwsSigner;
use crate::error::Error;
use crate::future::BoxFuture;

/// A private key in this process that signs JWTs: RSA (2048 bits or more), EC P-256 or
/// Ed25519. The in-memory [`JwsSigner`]; a key that must not leave a KMS or HSM implements
/// that trait instead.
///
/// Load one with [`from_pem`](SigningKey::from_pem), [`from_pkcs8_der`](SigningKey::from_pkcs8_der)
/// or [`from_jwk`](SigningKey::from_jwk), or make one with [`generate`](SigningKey::generate);
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
/// let key = authed::SigningKey::generate(authed::SigningAlgorithm::ES256)?.with_kid("key-2026-01");
/// assert_eq!(key.algorithm(), authed::SigningAlgorithm::ES256);
/// assert_eq!(key.public_jwk().to_value()["kid"], "key-2026-01");
/// # Ok(()) }
/// # run().unwrap();
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    key: Arc<crypto::PrivateKey>,
    /// Kept for [`SigningKey::to_pkcs8_der`]; zeroized on drop.
    material: Arc<KeyMaterial>,
    algorithm: SigningAlgorithm,
    /// The public key, with the `kid` and `alg` above.
    public: PublicJwk,
    x5t_s256: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself is left out: it is the secret.
        f.debug_struct("SigningKey")
            .field("algorithm", &self.inner.algorithm)
            .field("kid", &self.inner.public.kid())
            .finish_non_exhaustive()
    }
}

/// RSA keys this crate makes ([`SigningKey::generate`]): NIST's size for use beyond 2030.
const GENERATED_RSA_BITS: usize = 3072;

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
    /// type or curve, an RSA key shorter than 2048 bits, or truncated or damaged. The message
    /// names the problem ("the RSA key is truncated or malformed"), never the key.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, Error> {
        Self::from_material(KeyMaterial::from_pem(pem)?)
    }

    /// Reads a PKCS#8 private key in DER (RSA, EC P-256 or Ed25519), as
    /// [`from_pem`](SigningKey::from_pem) reads its `PRIVATE KEY` block.
    ///
    /// # Errors
    ///
    /// As [`from_pem`](SigningKey::from_pem).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, Error> {
        Self::from_material(KeyMaterial::from_pkcs8_der(der)?)
    }

    /// Makes a new key for `algorithm` with the operating system's random number generator:
    /// P-256 for ES256, Ed25519 for EdDSA, RSA of 3072 bits for the RSA algorithms (which takes
    /// a moment).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the random number generator fails.
    pub fn generate(algorithm: SigningAlgorithm) -> Result<SigningKey, Error> {
        Self::generate_sized(algorithm, GENERATED_RSA_BITS)
    }

    /// [`generate`](SigningKey::generate) with RSA keys of `rsa_bits` (2048, 3072 or 4096).
    pub(crate) fn generate_sized(
        algorithm: SigningAlgorithm,
        rsa_bits: usize,
    ) -> Result<SigningKey, Error> {
        let key = match algorithm.key_type() {
            KeyType::Rsa => {
                let material = crypto::generate_rsa(rsa_bits)
                    .ok_or_else(|| Error::config("signing key: RSA key generation failed"))?;
                Self::from_material(material)?
            }
            KeyType::P256 => loop {
                // A random 32-byte string is a valid scalar except with odds of 2^-32.
                let material = KeyMaterial::P256(Zeroizing::new(random_bytes::<32>()?));
                if let Ok(key) = Self::from_material(material) {
                    break key;
                }
            },
            KeyType::Ed25519 => {
                Self::from_material(KeyMaterial::Ed25519(Zeroizing::new(random_bytes::<32>()?)))?
            }
        };
        key.with_algorithm(algorithm)
    }

    /// Reads a private JWK (RFC 7517, with its private part `d`): `kty` `RSA` (two primes,
    /// with `p`, `q`, `dp`, `dq`, `qi`), `EC` on `P-256`, or `OKP` on `Ed25519`. Its `kid` and
    /// `alg`, when present, become the key's.
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
        let mut key = Self::from_material(KeyMaterial::from_private_jwk(obj)?)?;
        // The public members, when given, must be this private key's: a mismatch means the
        // provider holds another key than the one that would sign.
        let public = key.inner.public.to_value();
        for member in ["n", "e", "x", "y"] {
            if let Some(given) = obj.get(member) {
                let ours = public.get(member).and_then(Value::as_str);
                let same = given
                    .as_str()
                    .zip(ours)
                    .is_some_and(|(g, o)| g.trim_end_matches('=') == o);
                if !same {
                    return Err(Error::config(format!(
                        "private JWK: `{member}` does not match the private key"
                    )));
                }
            }
        }
        let str_of = |name: &str| obj.get(name).and_then(Value::as_str);
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

    fn from_material(material: KeyMaterial) -> Result<SigningKey, Error> {
        let key_type = material.key_type();
        if let KeyMaterial::Rsa(rsa) = &material {
            let bits = bit_length(&rsa.n);
            if bits < 2048 {
                return Err(Error::config(
                    "signing key: RSA keys must have at least 2048 bits",
                ));
            }
            if bits > 8192 {
                return Err(Error::config(
                    "signing key: RSA keys of more than 8192 bits are not supported",
                ));
            }
        }
        // The backend checks the key (an RSA key's numbers agree, a P-256 scalar is in range):
        // a damaged key fails here, at load time, rather than at the first request.
        let (key, public) = crypto::PrivateKey::new(&material).ok_or_else(|| {
            Error::config(match key_type {
                KeyType::Rsa => {
                    "signing key: the RSA key is inconsistent (its numbers are not one key)"
                }
                KeyType::P256 => "signing key: the EC key is not a valid P-256 private key",
                KeyType::Ed25519 => "signing key: the Ed25519 key is damaged",
            })
        })?;
        let algorithm = key_type.default_algorithm();
        Ok(SigningKey {
            inner: Arc::new(Inner {
                key: Arc::new(key),
                material: Arc::new(material),
                algorithm,
                public: PublicJwk::from_params(public).with_algorithm(algorithm)?,
                x5t_s256: None,
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
        self.update(|inner| inner.public = inner.public.clone().with_kid(kid))
    }

    /// Signs with `algorithm` instead of the key type's default: PS256 (or RS384, …) for an
    /// RSA key. Discovery may also pick one the provider lists.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the key cannot sign with `algorithm` (ES256 with an RSA key).
    pub fn with_algorithm(self, algorithm: SigningAlgorithm) -> Result<SigningKey, Error> {
        let public = self
            .inner
            .public
            .clone()
            .with_algorithm(algorithm)
            .map_err(|_| {
                Error::config(format!(
                    "signing key: a {} key cannot sign {algorithm}",
                    self.inner.public.key_type().name()
                ))
            })?;
        Ok(self.update(|inner| {
            inner.algorithm = algorithm;
            inner.public = public;
        }))
    }

    /// Adds the `x5t#S256` header (the base64url SHA-256 of the certificate's DER) to every JWT
    /// this key signs: what Microsoft Entra uses to find a certificate credential. `certificate`
    /// is the PEM (or DER) certificate registered with the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `certificate` is neither a PEM certificate nor DER.
    pub fn with_certificate(self, certificate: &[u8]) -> Result<SigningKey, Error> {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        let der = match certificate.windows(BEGIN.len()).position(|w| w == BEGIN) {
            Some(start) => {
                let block = certificate.get(start..).unwrap_or_default();
                let end = block
                    .windows(25)
                    .position(|w| w == b"-----END CERTIFICATE-----")
                    .ok_or_else(|| Error::config("certificate: the PEM block is not closed"))?;
                let (_, der) =
                    pem_rfc7468::decode_vec(block.get(..end + 25).unwrap_or_default())
                        .map_err(|_| Error::config("certificate: the PEM block is damaged"))?;
                der
            }
            None if certificate.first() == Some(&0x30) => certificate.to_vec(),
            None => return Err(Error::config("certificate: neither PEM nor DER")),
        };
        let thumbprint = B64.encode(crypto::sha256(&der));
        Ok(self.update(|inner| inner.x5t_s256 = Some(thumbprint)))
    }

    /// The algorithm every JWT this key signs carries in its `alg` header.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.inner.algorithm
    }

    /// The key's `kid`, if one was set.
    pub fn kid(&self) -> Option<&str> {
        self.inner.public.kid()
    }

    /// The public key as a JWK, with `alg`, and `kid` when set: what to register with the
    /// provider, in a JWKS (`{"keys": [key.public_jwk()]}`).
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.inner.public
    }

    /// The RFC 7638 JWK thumbprint of the public key (SHA-256, base64url): a `kid` that
    /// follows from the key, and the `jkt` of DPoP.
    pub fn thumbprint(&self) -> String {
        self.inner.public.thumbprint()
    }

    /// The `x5t#S256` header, when [`with_certificate`](SigningKey::with_certificate) set one.
    pub(crate) fn certificate_thumbprint(&self) -> Option<&str> {
        self.inner.x5t_s256.as_deref()
    }

    /// The private key as PKCS#8 DER, for a store to keep. Handle it as a secret.
    pub(crate) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.inner.material.to_pkcs8_der()
    }

    /// The JWS signature of `message`, now: an in-memory key needs no future.
    pub(crate) fn sign_now(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.inner
            .key
            .sign(self.inner.algorithm, message)
            .ok_or_else(|| Error::config("signing key: signing failed"))
    }
}

impl JwsSigner for SigningKey {
    fn algorithm(&self) -> SigningAlgorithm {
        self.inner.algorithm
    }

    fn key_id(&self) -> Option<&str> {
        self.kid()
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.inner.public
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        let signature = self.sign_now(message);
        Box::pin(std::future::ready(signature))
    }

    fn certificate_thumbprint(&self) -> Option<&str> {
        self.inner.x5t_s256.as_deref()
    }
}

/// `N` bytes from the operating system's random number generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::config(format!("the OS random number generator failed: {e}")))?;
    Ok(bytes)
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

    /// A JWT of `{"sub": "me"}` signed with `key`, through the crate's one JWS assembly.
    fn jwt(key: &SigningKey) -> String {
        use secrecy::ExposeSecret as _;
        let signer = crate::jose::jws::Signer::new(key.clone()).unwrap();
        let jwt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(signer.sign_jwt("JWT", &serde_json::json!({"sub": "me"})))
            .unwrap();
        jwt.expose_secret().to_owned()
    }

    /// Signs a JWT with `key` and verifies it, with jsonwebtoken, against the public JWK Node
    /// exported.
    fn round_trip(key: &SigningKey, public: &str) {
        crate::jose::install_crypto_provider();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(public).unwrap();
        let mut validation = Validation::new(key.algorithm().jose());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(
            jwt(key),
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
        assert_eq!(public_members(&key.public_jwk().to_value()), expected);
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
        assert_eq!(ps.public_jwk().to_value()["alg"], "PS256");
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
            key.certificate_thumbprint(),
            Some("ysfMNqXBRgrgGclTMRZcxbLs3LGvx-kvlg9l1RGCWcA")
        );
        let header = jwt(&key).split('.').next().unwrap().to_owned();
        let header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
        assert_eq!(
            header["x5t#S256"],
            "ysfMNqXBRgrgGclTMRZcxbLs3LGvx-kvlg9l1RGCWcA"
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
        let expected = B64.encode(crypto::sha256(&der));
        assert_eq!(key.certificate_thumbprint(), Some(expected.as_str()));
    }
}

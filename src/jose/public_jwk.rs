//! Public keys as JWKs (RFC 7517, 7518 §6), once for every key: a client's own (to register,
//! and in DPoP proofs), a remote signer's, and a provider's (its JWKS). A [`PublicJwk`] is
//! checked when it is made — key type, curve, sizes, `kty`/`alg` agreement, `use`, `key_ops` —
//! so no crypto library ever sees a key this crate did not check. Its RFC 7638 thumbprint is
//! here too.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use der::Decode as _;
use der::asn1::ObjectIdentifier;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use serde_json::{Value, json};

use super::algorithm::{KeyType, SigningAlgorithm};
use super::crypto;
use super::key_format::{PublicParams, bit_length, significant};
use crate::error::Error;

/// RSA moduli this crate accepts, in bits: RFC 7518 §3.3 asks for 2048 or more; 8192 is the
/// most aws-lc verifies.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A public key as a JWK: RSA (2048 to 8192 bits), EC P-256 or Ed25519, with its `kid` and
/// `alg` when it has them.
///
/// What [`JwsSigner::public_jwk`](crate::JwsSigner::public_jwk) returns: a client registers it
/// with the provider (`{"keys": [jwk]}`, as JSON through [`to_value`](PublicJwk::to_value) or
/// `serde`), and a DPoP proof carries it. A remote key service usually hands out its public key
/// as a DER or PEM `SubjectPublicKeyInfo` ([`from_spki_der`](PublicJwk::from_spki_der),
/// [`from_pem`](PublicJwk::from_pem)).
///
/// Every way to make one checks the key first: the key type and curve, the exact sizes
/// (`x`/`y` 32 bytes, RSA from 2048 to 8192 bits with an odd exponent), that `alg`, when
/// given, fits the key type, that `use` is `sig` and `key_ops` allows `verify`.
///
/// ```
/// let jwk = authed::PublicJwk::from_json(
///     r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
/// )?;
/// // RFC 8037 Appendix A.3.
/// assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
/// # Ok::<(), authed::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    params: PublicParams,
    kid: Option<String>,
    alg: Option<SigningAlgorithm>,
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kty", &self.key_type().name())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

/// Why a JWK was refused: a fixed text, safe to log (no key material, nothing received).
pub(crate) type Refused = &'static str;

fn b64(text: &str) -> Result<Vec<u8>, Refused> {
    B64.decode(text.trim_end_matches('='))
        .map_err(|_| "a key parameter is not base64url")
}

fn fixed32(text: &str, what: Refused) -> Result<[u8; 32], Refused> {
    b64(text)?.as_slice().try_into().map_err(|_| what)
}

/// The checks of an RSA public key: size, and an exponent that is odd, at least 3 and at most
/// 32 bits (65537 in practice).
fn rsa_params(n: Vec<u8>, e: Vec<u8>) -> Result<PublicParams, Refused> {
    let (n, e) = (significant(&n).to_vec(), significant(&e).to_vec());
    if !RSA_BITS.contains(&bit_length(&n)) {
        return Err("the RSA modulus is not 2048 to 8192 bits");
    }
    if n.last().is_none_or(|b| b % 2 == 0) {
        return Err("the RSA modulus is even");
    }
    let odd = e.last().is_some_and(|b| b % 2 == 1);
    if e.len() > 4 || !odd || e.as_slice() == [1] {
        return Err("the RSA exponent is not an odd number from 3 to 2^32");
    }
    Ok(PublicParams::Rsa { n, e })
}

impl PublicJwk {
    /// Reads a public JWK from JSON and checks it (see [`PublicJwk`]). Private members, when
    /// present, are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what is wrong, never the key.
    pub fn from_json(json: &str) -> Result<PublicJwk, Error> {
        let value: Value =
            serde_json::from_str(json).map_err(|_| Error::config("public JWK: not JSON"))?;
        Self::from_value(&value).map_err(|why| Error::config(format!("public JWK: {why}")))
    }

    /// A JWK of a JWKS, or why it was refused.
    pub(crate) fn from_value(value: &Value) -> Result<PublicJwk, Refused> {
        let jwk: Jwk = serde_json::from_value(value.clone())
            .map_err(|_| "not a JWK (kty, or a member's type)")?;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err("its use is not sig");
        }
        if jwk
            .common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return Err("its key_ops do not include verify");
        }
        let params = match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => rsa_params(b64(&p.n)?, b64(&p.e)?)?,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                PublicParams::P256 {
                    x: fixed32(&p.x, "a P-256 x is not 32 bytes")?,
                    y: fixed32(&p.y, "a P-256 y is not 32 bytes")?,
                }
            }
            AlgorithmParameters::EllipticCurve(_) => return Err("an EC curve other than P-256"),
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                PublicParams::Ed25519 {
                    x: fixed32(&p.x, "an Ed25519 x is not 32 bytes")?,
                }
            }
            AlgorithmParameters::OctetKeyPair(_) => return Err("an OKP curve other than Ed25519"),
            AlgorithmParameters::OctetKey(_) => {
                return Err("a symmetric key never verifies a provider's signature");
            }
            _ => return Err("an unknown key type"),
        };
        let key = PublicJwk::from_params(params);
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => Some(
                key_algorithm(alg)
                    .filter(|a| a.key_type() == key.key_type())
                    .ok_or("its alg does not fit its key type")?,
            ),
        };
        Ok(PublicJwk {
            kid: jwk.common.key_id,
            alg,
            ..key
        })
    }

    /// Reads a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), the form key services hand out
    /// (AWS KMS `GetPublicKey`, for one).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when it is not an RSA, P-256 or Ed25519 public key that passes the
    /// checks.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicJwk, Error> {
        const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
        const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
        const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
        let refuse = |why: &str| Error::config(format!("public key: {why}"));
        let spki = pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|_| refuse("not a DER SubjectPublicKeyInfo"))?;
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| refuse("the key's bit string is not whole bytes"))?;
        let params = match spki.algorithm.oid {
            RSA => {
                let rsa = pkcs1::RsaPublicKeyRef::from_der(key)
                    .map_err(|_| refuse("the RSA key is truncated or malformed"))?;
                rsa_params(
                    rsa.modulus.as_bytes().to_vec(),
                    rsa.public_exponent.as_bytes().to_vec(),
                )
                .map_err(refuse)?
            }
            EC if spki.algorithm.parameters_oid().ok() == Some(P256) => {
                // The uncompressed point: 0x04, x, y.
                match (key.first(), key.get(1..33), key.get(33..)) {
                    (Some(4), Some(x), Some(y)) if y.len() == 32 => PublicParams::P256 {
                        x: x.try_into()
                            .map_err(|_| refuse("a P-256 point is malformed"))?,
                        y: y.try_into()
                            .map_err(|_| refuse("a P-256 point is malformed"))?,
                    },
                    _ => return Err(refuse("a P-256 key must be an uncompressed point")),
                }
            }
            EC => return Err(refuse("an EC curve other than P-256")),
            ED25519 => PublicParams::Ed25519 {
                x: key
                    .try_into()
                    .map_err(|_| refuse("an Ed25519 key is not 32 bytes"))?,
            },
            _ => {
                return Err(refuse(
                    "unsupported key type (use RSA, EC P-256 or Ed25519)",
                ));
            }
        };
        Ok(PublicJwk::from_params(params))
    }

    /// Reads a PEM `PUBLIC KEY` block (the PEM form of
    /// [`from_spki_der`](PublicJwk::from_spki_der), as `openssl pkey -pubout` and Google Cloud
    /// KMS write it).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the input holds no `PUBLIC KEY` block, or its key fails the checks.
    pub fn from_pem(pem: &str) -> Result<PublicJwk, Error> {
        let start = pem
            .find("-----BEGIN PUBLIC KEY-----")
            .ok_or_else(|| Error::config("public key: no PEM PUBLIC KEY block found"))?;
        let block = pem.get(start..).unwrap_or_default();
        let (label, der) = pem_rfc7468::decode_vec(block.trim_end().as_bytes())
            .map_err(|_| Error::config("public key: the PEM block is damaged"))?;
        if label != "PUBLIC KEY" {
            return Err(Error::config("public key: no PEM PUBLIC KEY block found"));
        }
        Self::from_spki_der(&der)
    }

    pub(crate) fn from_params(params: PublicParams) -> PublicJwk {
        PublicJwk {
            params,
            kid: None,
            alg: None,
        }
    }

    /// The same key under `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> PublicJwk {
        self.kid = Some(kid.into());
        self
    }

    /// The same key, naming `alg` as the one algorithm it is used with.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `alg` is not an algorithm of this key type.
    pub fn with_algorithm(mut self, alg: SigningAlgorithm) -> Result<PublicJwk, Error> {
        if alg.key_type() != self.key_type() {
            return Err(Error::config(format!(
                "a {} key cannot sign {alg}",
                self.key_type().name()
            )));
        }
        self.alg = Some(alg);
        Ok(self)
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's `alg`, if it names one.
    pub fn algorithm(&self) -> Option<SigningAlgorithm> {
        self.alg
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): a `kid` that follows from the key,
    /// and DPoP's `jkt`.
    pub fn thumbprint(&self) -> String {
        B64.encode(crypto::sha256(self.members_json().as_bytes()))
    }

    /// The JWK as JSON: `kty` and its public members, `use: "sig"`, and `kid` and `alg` when
    /// set. What to register with a provider, in a JWKS.
    pub fn to_value(&self) -> Value {
        let mut value = self.members();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("use".into(), json!("sig"));
            if let Some(kid) = &self.kid {
                obj.insert("kid".into(), json!(kid));
            }
            if let Some(alg) = self.alg {
                obj.insert("alg".into(), json!(alg.as_str()));
            }
        }
        value
    }

    /// The required members only (RFC 7638 §3.2): the `jwk` of a DPoP proof.
    pub(crate) fn members(&self) -> Value {
        match &self.params {
            PublicParams::Rsa { n, e } => {
                json!({"e": B64.encode(e), "kty": "RSA", "n": B64.encode(n)})
            }
            PublicParams::P256 { x, y } => {
                json!({"crv": "P-256", "kty": "EC", "x": B64.encode(x), "y": B64.encode(y)})
            }
            PublicParams::Ed25519 { x } => {
                json!({"crv": "Ed25519", "kty": "OKP", "x": B64.encode(x)})
            }
        }
    }

    /// RFC 7638's input: the required members in lexicographic order, no whitespace
    /// (`serde_json`'s map is ordered by key).
    pub(crate) fn members_json(&self) -> String {
        self.members().to_string()
    }

    pub(crate) fn key_type(&self) -> KeyType {
        match self.params {
            PublicParams::Rsa { .. } => KeyType::Rsa,
            PublicParams::P256 { .. } => KeyType::P256,
            PublicParams::Ed25519 { .. } => KeyType::Ed25519,
        }
    }

    /// `true` when this key may verify `alg` signatures: the right key type, and its own
    /// `alg`, when it has one, is `alg`.
    pub(crate) fn may_verify(&self, alg: SigningAlgorithm) -> bool {
        alg.key_type() == self.key_type() && self.alg.is_none_or(|own| own == alg)
    }

    /// `true` when `signature` is this key's `alg` signature of `message`.
    pub(crate) fn verify(&self, alg: SigningAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.may_verify(alg) && crypto::verify(&self.params, alg, message, signature)
    }
}

impl serde::Serialize for PublicJwk {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// Our algorithm for a JWK's `alg`, if we sign or verify with it.
fn key_algorithm(alg: KeyAlgorithm) -> Option<SigningAlgorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => SigningAlgorithm::RS256,
        KeyAlgorithm::RS384 => SigningAlgorithm::RS384,
        KeyAlgorithm::RS512 => SigningAlgorithm::RS512,
        KeyAlgorithm::PS256 => SigningAlgorithm::PS256,
        KeyAlgorithm::PS384 => SigningAlgorithm::PS384,
        KeyAlgorithm::PS512 => SigningAlgorithm::PS512,
        KeyAlgorithm::ES256 => SigningAlgorithm::ES256,
        KeyAlgorithm::EdDSA => SigningAlgorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUB: &str = include_str!("../../tests/support/keys/rsa_pkcs8.pub.jwk.json");
    const EC_PUB: &str = include_str!("../../tests/support/keys/ec_pkcs8.pub.jwk.json");
    const ED_PUB: &str = include_str!("../../tests/support/keys/ed25519.pub.jwk.json");

    // Computed independently with Node (SHA-256 of the RFC 7638 member JSON).
    const RSA_THUMB: &str = "_YFm8Mm1o-ZGdvgSnU5BY-cpezHwVUWuf6TjwCxVy9Q";
    const EC_THUMB: &str = "EPN8QYKSsu1vQWUsdN8hH6BLw34UNFFG7E9i9fSRI34";
    const ED_THUMB: &str = "eGV29zGbITFzkh5SE8epQK4MVdu7lvEGIHmmYCcwpJw";

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1's own example.
        let rfc = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        assert_eq!(
            PublicJwk::from_json(rfc).unwrap().thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        for (json, thumb) in [(RSA_PUB, RSA_THUMB), (EC_PUB, EC_THUMB), (ED_PUB, ED_THUMB)] {
            let jwk = PublicJwk::from_json(json).unwrap();
            assert_eq!(jwk.thumbprint(), thumb);
            // Its JSON reads back as the same key.
            let again = PublicJwk::from_json(&jwk.to_value().to_string()).unwrap();
            assert_eq!(again, jwk);
        }
    }

    #[test]
    fn spki_der_and_pem_read_as_the_same_keys() {
        // `openssl pkey -pubout` of tests/support/keys/*.pem.
        let pems = [
            (
                include_str!("../../tests/support/keys/ec_pkcs8.pub.pem"),
                EC_THUMB,
            ),
            (
                include_str!("../../tests/support/keys/ed25519.pub.pem"),
                ED_THUMB,
            ),
            (
                include_str!("../../tests/support/keys/rsa_pkcs8.pub.pem"),
                RSA_THUMB,
            ),
        ];
        for (pem, thumb) in pems {
            assert_eq!(PublicJwk::from_pem(pem).unwrap().thumbprint(), thumb);
        }
        assert!(PublicJwk::from_spki_der(b"\x30\x03\x02\x01\x00").is_err());
    }

    #[test]
    fn checks_refuse_what_they_should() {
        let mut ed: Value = serde_json::from_str(ED_PUB).unwrap();
        ed["alg"] = json!("EdDSA");
        ed["use"] = json!("sig");
        ed["key_ops"] = json!(["verify"]);
        assert!(PublicJwk::from_value(&ed).is_ok());
        let refused = |change: Value| {
            let mut key = ed.clone();
            for (k, v) in change.as_object().unwrap() {
                key[k] = v.clone();
            }
            PublicJwk::from_value(&key).unwrap_err()
        };
        assert_eq!(
            refused(json!({"x": "AAAA"})),
            "an Ed25519 x is not 32 bytes"
        );
        assert_eq!(
            refused(json!({"alg": "ES256"})),
            "its alg does not fit its key type"
        );
        assert_eq!(
            refused(json!({"alg": "HS256"})),
            "its alg does not fit its key type"
        );
        assert_eq!(refused(json!({"use": "enc"})), "its use is not sig");
        assert_eq!(
            refused(json!({"key_ops": ["sign"]})),
            "its key_ops do not include verify"
        );
        assert_eq!(refused(json!({"crv": "X25519"})), "an unknown key type");
        let rsa = |n: &[u8], e: &[u8]| {
            PublicJwk::from_value(&json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)}))
        };
        assert!(rsa(&[0xc1; 256], &[1, 0, 1]).is_ok());
        // Leading zeros are not bits.
        assert!(rsa(&[&[0u8; 3][..], &[0xc1; 256]].concat(), &[0, 1, 0, 1]).is_ok());
        assert!(rsa(&[0xc1; 255], &[1, 0, 1]).is_err());
        assert!(rsa(&[0xc0; 256], &[1, 0, 1]).is_err(), "even modulus");
        assert!(rsa(&[0xc1; 256], &[1]).is_err());
        assert!(rsa(&[0xc1; 256], &[2]).is_err());
        assert!(rsa(&[0xc1; 256], &[1, 0, 0, 0, 1]).is_err());
    }
}

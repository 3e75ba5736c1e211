//! The numbers of keys ([`KeyMaterial`], [`PublicParams`]), and reading private keys, once for
//! every key this crate signs with: PEM (RFC 7468), PKCS#8
//! (RFC 5208 / 5958), SEC1 EC keys (RFC 5915), PKCS#1 RSA keys (RFC 8017) and private JWKs
//! (RFC 7517), into [`KeyMaterial`], the raw numbers a crypto backend builds its key from; and
//! writing that material back as PKCS#8, for stores and for the backends that read PKCS#8.
//!
//! The ASN.1 is the RustCrypto format crates' (`pem-rfc7468`, `pkcs8`, `sec1`, `pkcs1`, `der`):
//! no hand-written byte prefixes. Every error names what is wrong, never the key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode as _, Encode as _};
use secrecy::zeroize::Zeroizing;
use serde_json::{Map, Value};

use super::algorithm::KeyType;
use crate::error::Error;

/// `rsaEncryption` (RFC 8017 A.1).
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / P-256 (RFC 5480 §2.1.1.1).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `id-Ed25519` (RFC 8410 §3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A private key's numbers, big-endian, as a backend needs them. Zeroized on drop.
pub(crate) enum KeyMaterial {
    Rsa(Box<RsaMaterial>),
    /// The P-256 private scalar.
    P256(Zeroizing<[u8; 32]>),
    /// The Ed25519 seed (RFC 8032 §5.1.5).
    Ed25519(Zeroizing<[u8; 32]>),
}

/// A public key whose sizes are checked (`public_jwk`), or derived from a private key by a
/// backend: what a backend verifies with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicParams {
    /// Modulus and exponent, big-endian, no leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    P256 {
        x: [u8; 32],
        y: [u8; 32],
    },
    Ed25519 {
        x: [u8; 32],
    },
}

/// An RSA private key (RFC 8017 §3.2, two primes), each number without leading zeros.
pub(crate) struct RsaMaterial {
    pub(crate) n: Zeroizing<Vec<u8>>,
    pub(crate) e: Zeroizing<Vec<u8>>,
    pub(crate) d: Zeroizing<Vec<u8>>,
    pub(crate) p: Zeroizing<Vec<u8>>,
    pub(crate) q: Zeroizing<Vec<u8>>,
    pub(crate) dp: Zeroizing<Vec<u8>>,
    pub(crate) dq: Zeroizing<Vec<u8>>,
    pub(crate) qi: Zeroizing<Vec<u8>>,
}

fn bad(msg: &str) -> Error {
    Error::config(format!("signing key: {msg}"))
}

/// A big-endian number without its leading zero bytes.
pub(crate) fn significant(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The bit length of a big-endian number without leading zeros (an RSA modulus's size).
pub(crate) fn bit_length(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
}

fn owned(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(significant(bytes).to_vec())
}

/// `bytes` left-padded to 32 bytes (a DER or JWK number may drop leading zeros).
fn scalar32(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = significant(bytes);
    let mut out = Zeroizing::new([0u8; 32]);
    let start = 32usize.checked_sub(bytes.len())?;
    out.get_mut(start..)?.copy_from_slice(bytes);
    Some(out)
}

impl KeyMaterial {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            KeyMaterial::Rsa(_) => KeyType::Rsa,
            KeyMaterial::P256(_) => KeyType::P256,
            KeyMaterial::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The first PEM block of `pem` whose label ends in `PRIVATE KEY`: PKCS#8, PKCS#1
    /// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). Other blocks (a certificate next to the
    /// key, OpenSSL's `EC PARAMETERS`) are skipped.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<KeyMaterial, Error> {
        let text = std::str::from_utf8(pem).map_err(|_| bad("the PEM input is not text"))?;
        let (label, der) = private_pem_block(text)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => from_pkcs1(&der),
            "EC PRIVATE KEY" => from_sec1(&der, None),
            "ENCRYPTED PRIVATE KEY" => Err(encrypted()),
            "OPENSSH PRIVATE KEY" => Err(bad(
                "an OpenSSH key; convert it to PKCS#8 first (ssh-keygen -p -m PKCS8 -f key)",
            )),
            _ => Err(bad(
                "unsupported PEM block (use PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            )),
        }
    }

    /// A PKCS#8 `PrivateKeyInfo` (v1 or v2) in DER.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<KeyMaterial, Error> {
        let info = match pkcs8::PrivateKeyInfoRef::try_from(der) {
            Ok(info) => info,
            // Say which key it was, when its algorithm can still be read.
            Err(_) => {
                return Err(match pkcs8_algorithm(der) {
                    Some(oid) if oid == RSA => bad("the RSA key is truncated or malformed"),
                    Some(oid) if oid == EC => bad("the EC key is truncated or malformed"),
                    Some(oid) if oid == ED25519 => bad("the Ed25519 key is truncated or malformed"),
                    Some(_) => unsupported(),
                    None => bad("not a PKCS#8 private key (truncated or malformed DER)"),
                });
            }
        };
        let key = info.private_key.as_bytes();
        match info.algorithm.oid {
            RSA => from_pkcs1(key),
            EC => {
                let curve = info.algorithm.parameters_oid().ok();
                from_sec1(key, curve)
            }
            ED25519 => {
                // RFC 8410 §7: `CurvePrivateKey ::= OCTET STRING`, the 32-byte seed.
                let seed = <&OctetStringRef>::from_der(key)
                    .ok()
                    .and_then(|s| <[u8; 32]>::try_from(s.as_bytes()).ok())
                    .ok_or_else(|| bad("the Ed25519 key is truncated or malformed"))?;
                Ok(KeyMaterial::Ed25519(Zeroizing::new(seed)))
            }
            _ => Err(unsupported()),
        }
    }

    /// A private JWK's key (RFC 7518 §6): `kty` `RSA` (two primes, with the CRT members), `EC`
    /// on `P-256`, or `OKP` on `Ed25519`. The public members are checked against the private
    /// key by the caller, once a backend has derived it.
    pub(crate) fn from_private_jwk(obj: &Map<String, Value>) -> Result<KeyMaterial, Error> {
        let str_of = |name: &str| obj.get(name).and_then(Value::as_str);
        let member = |name: &str| -> Result<Zeroizing<Vec<u8>>, Error> {
            let text = obj
                .get(name)
                .ok_or_else(|| jwk_err(&format!("`{name}` is missing")))?
                .as_str()
                .ok_or_else(|| jwk_err(&format!("`{name}` is not a string")))?;
            B64.decode(text.trim_end_matches('='))
                .map(Zeroizing::new)
                .map_err(|_| jwk_err(&format!("`{name}` is not base64url")))
        };
        match str_of("kty") {
            Some("RSA") => {
                if obj.contains_key("oth") {
                    return Err(jwk_err(
                        "RSA keys with more than two primes are not supported",
                    ));
                }
                let number = |name: &str| member(name).map(|b| owned(&b));
                Ok(KeyMaterial::Rsa(Box::new(RsaMaterial {
                    n: number("n")?,
                    e: number("e")?,
                    d: number("d")?,
                    p: number("p")?,
                    q: number("q")?,
                    dp: number("dp")?,
                    dq: number("dq")?,
                    qi: number("qi")?,
                })))
            }
            Some("EC") => {
                if str_of("crv") != Some("P-256") {
                    return Err(jwk_err("only EC keys on curve P-256 are supported"));
                }
                let d = member("d")?;
                // RFC 7518 §6.2.2.1: `d` is exactly as long as the curve's order.
                if d.len() != 32 {
                    return Err(jwk_err("`d` is not a P-256 private key"));
                }
                scalar32(&d)
                    .map(KeyMaterial::P256)
                    .ok_or_else(|| jwk_err("`d` is not a P-256 private key"))
            }
            Some("OKP") => {
                if str_of("crv") != Some("Ed25519") {
                    return Err(jwk_err("only OKP keys on curve Ed25519 are supported"));
                }
                let d = member("d")?;
                <[u8; 32]>::try_from(d.as_slice())
                    .map(|seed| KeyMaterial::Ed25519(Zeroizing::new(seed)))
                    .map_err(|_| jwk_err("`d` is not an Ed25519 private key"))
            }
            Some(_) => Err(jwk_err("unsupported `kty` (use RSA, EC or OKP)")),
            None => Err(jwk_err("`kty` is missing")),
        }
    }

    /// The key as PKCS#8 v1 DER, the form stores keep and aws-lc reads.
    pub(crate) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let encode = || -> der::Result<Zeroizing<Vec<u8>>> {
            let (oid, params, inner): (_, Option<AnyRef<'_>>, Zeroizing<Vec<u8>>) = match self {
                KeyMaterial::Rsa(rsa) => {
                    (RSA, Some(AnyRef::NULL), Zeroizing::new(rsa.to_pkcs1_der()?))
                }
                KeyMaterial::P256(d) => {
                    let sec1 = sec1::EcPrivateKey {
                        private_key: d.as_slice(),
                        parameters: None,
                        public_key: None,
                    };
                    (
                        EC,
                        Some(AnyRef::from(&P256)),
                        Zeroizing::new(sec1.to_der()?),
                    )
                }
                KeyMaterial::Ed25519(seed) => (
                    ED25519,
                    None,
                    Zeroizing::new(OctetStringRef::new(seed.as_slice())?.to_der()?),
                ),
            };
            let info = pkcs8::PrivateKeyInfoRef::new(
                pkcs8::spki::AlgorithmIdentifier {
                    oid,
                    parameters: params,
                },
                OctetStringRef::new(&inner)?,
            );
            Ok(Zeroizing::new(info.to_der()?))
        };
        encode().map_err(|_| bad("the key cannot be encoded as PKCS#8"))
    }
}

impl RsaMaterial {
    fn to_pkcs1_der(&self) -> der::Result<Vec<u8>> {
        pkcs1::RsaPrivateKeyRef {
            modulus: UintRef::new(&self.n)?,
            public_exponent: UintRef::new(&self.e)?,
            private_exponent: UintRef::new(&self.d)?,
            prime1: UintRef::new(&self.p)?,
            prime2: UintRef::new(&self.q)?,
            exponent1: UintRef::new(&self.dp)?,
            exponent2: UintRef::new(&self.dq)?,
            coefficient: UintRef::new(&self.qi)?,
            other_prime_infos: None,
        }
        .to_der()
    }
}

fn jwk_err(msg: &str) -> Error {
    Error::config(format!("private JWK: {msg}"))
}

fn unsupported() -> Error {
    bad("unsupported key type (use RSA, EC P-256 or Ed25519)")
}

fn encrypted() -> Error {
    bad("the PEM key is encrypted; decrypt it first (openssl pkcs8 -in key.pem -nocrypt)")
}

/// A PKCS#1 `RSAPrivateKey`.
fn from_pkcs1(der: &[u8]) -> Result<KeyMaterial, Error> {
    let key = pkcs1::RsaPrivateKeyRef::try_from(der)
        .map_err(|_| bad("the RSA key is truncated or malformed"))?;
    if key.other_prime_infos.is_some() {
        return Err(bad("RSA keys with more than two primes are not supported"));
    }
    let n = |u: UintRef<'_>| owned(u.as_bytes());
    Ok(KeyMaterial::Rsa(Box::new(RsaMaterial {
        n: n(key.modulus),
        e: n(key.public_exponent),
        d: n(key.private_exponent),
        p: n(key.prime1),
        q: n(key.prime2),
        dp: n(key.exponent1),
        dq: n(key.exponent2),
        qi: n(key.coefficient),
    })))
}

/// A SEC1 `ECPrivateKey`; `curve` is the PKCS#8 wrapper's, when there is one.
fn from_sec1(der: &[u8], curve: Option<ObjectIdentifier>) -> Result<KeyMaterial, Error> {
    let key = sec1::EcPrivateKey::try_from(der)
        .map_err(|_| bad("the EC key is truncated or malformed"))?;
    let curve = curve.or_else(|| key.parameters.and_then(|p| p.named_curve()));
    if curve != Some(P256) {
        return Err(bad(
            "the EC key is not on curve P-256 (the only EC curve supported)",
        ));
    }
    scalar32(key.private_key)
        .map(KeyMaterial::P256)
        .ok_or_else(|| bad("the EC key is truncated or malformed"))
}

/// The algorithm OID of a PKCS#8 structure that does not parse (a truncated file): its header
/// comes first and usually survives.
fn pkcs8_algorithm(der: &[u8]) -> Option<ObjectIdentifier> {
    let mut reader = der::SliceReader::new(der).ok()?;
    let header = der::Header::decode(&mut reader).ok()?;
    if header.tag() != der::Tag::Sequence {
        return None;
    }
    let _version = u8::decode(&mut reader).ok()?;
    let algorithm = pkcs8::spki::AlgorithmIdentifierRef::decode(&mut reader).ok()?;
    Some(algorithm.oid)
}

/// The label and DER of the first private key block.
fn private_pem_block(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = rest.get(start..).unwrap_or_default();
        let after = block.get(11..).unwrap_or_default();
        let label_end = after
            .find("-----")
            .ok_or_else(|| bad("a PEM BEGIN line is not closed"))?;
        let label = after.get(..label_end).unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            return Err(bad(&format!(
                "the PEM block {label} has no END line (is the file truncated?)"
            )));
        };
        let whole = block.get(..end + end_marker.len()).unwrap_or_default();
        if label.ends_with("PRIVATE KEY") {
            return decode_block(label, whole).map(|der| (label.to_owned(), der));
        }
        rest = block.get(end + end_marker.len()..).unwrap_or_default();
    }
    Err(bad("no PEM private key block found"))
}

/// One PEM block, strictly (RFC 7468); failing that, once more with its base64 re-wrapped, for
/// keys pasted with other line breaks or indentation.
fn decode_block(label: &str, block: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    match pem_rfc7468::decode_vec(block.as_bytes()) {
        Ok((_, der)) => return Ok(Zeroizing::new(der)),
        // Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`).
        Err(pem_rfc7468::Error::HeaderDisallowed) => return Err(encrypted()),
        Err(_) => {}
    }
    let body: Zeroizing<String> = Zeroizing::new(
        block
            .lines()
            .filter(|l| !l.trim_start().starts_with("-----"))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    let mut rewrapped = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for line in body.as_bytes().chunks(64) {
        rewrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        rewrapped.push('\n');
    }
    rewrapped.push_str(&format!("-----END {label}-----\n"));
    pem_rfc7468::decode_vec(rewrapped.as_bytes())
        .map(|(_, der)| Zeroizing::new(der))
        .map_err(|_| bad("the PEM body is not valid base64 (is the file truncated?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA8: &str = include_str!("../../tests/support/keys/rsa_pkcs8.pem");
    const RSA1: &str = include_str!("../../tests/support/keys/rsa_pkcs1.pem");
    const EC8: &str = include_str!("../../tests/support/keys/ec_pkcs8.pem");
    const EC1: &str = include_str!("../../tests/support/keys/ec_sec1.pem");
    const ED: &str = include_str!("../../tests/support/keys/ed25519.pem");

    fn der_of(pem: &str) -> Vec<u8> {
        pem_rfc7468::decode_vec(pem.as_bytes()).unwrap().1
    }

    fn message(r: Result<KeyMaterial, Error>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_format_reads_and_pkcs8_round_trips() {
        for pem in [RSA8, RSA1, EC8, EC1, ED] {
            let key = KeyMaterial::from_pem(pem.as_bytes()).unwrap();
            let again = KeyMaterial::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
            assert_eq!(
                again.to_pkcs8_der().unwrap().as_slice(),
                key.to_pkcs8_der().unwrap().as_slice()
            );
        }
        // The same RSA key in PKCS#8 and PKCS#1, the same EC key in PKCS#8 and SEC1.
        let same = |a: &str, b: &str| {
            KeyMaterial::from_pem(a.as_bytes())
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                == KeyMaterial::from_pem(b.as_bytes())
                    .unwrap()
                    .to_pkcs8_der()
                    .unwrap()
        };
        assert!(same(RSA8, RSA1));
        assert!(same(EC8, EC1));
        // OpenSSL's own PKCS#8 for Ed25519 is what we write.
        assert_eq!(
            KeyMaterial::from_pem(ED.as_bytes())
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .as_slice(),
            der_of(ED).as_slice()
        );
    }

    #[test]
    fn a_truncated_key_says_which_key_and_what_is_wrong() {
        for (pem, kind) in [(RSA8, "RSA"), (EC8, "EC"), (ED, "Ed25519")] {
            let der = der_of(pem);
            for cut in [der.len() - 1, der.len() / 2, 40] {
                let msg = message(KeyMaterial::from_pkcs8_der(der.get(..cut).unwrap()));
                assert!(
                    msg.contains(&format!("the {kind} key is truncated or malformed")),
                    "{kind} cut at {cut}: {msg}"
                );
            }
        }
        // A PEM file cut off mid-way: whole lines lost, the END line kept.
        let lines: Vec<&str> = RSA8.lines().collect();
        let mut cut = lines.get(..lines.len() / 2).unwrap().join("\n");
        cut.push_str("\n-----END PRIVATE KEY-----\n");
        let msg = message(KeyMaterial::from_pem(cut.as_bytes()));
        assert!(msg.contains("RSA key is truncated or malformed"), "{msg}");
        let no_end = lines.get(..5).unwrap().join("\n");
        let msg = message(KeyMaterial::from_pem(no_end.as_bytes()));
        assert!(msg.contains("no END line"), "{msg}");
        let msg = message(KeyMaterial::from_pkcs1_for_test(&der_of(RSA1)[..100]));
        assert!(msg.contains("RSA key is truncated or malformed"), "{msg}");
    }

    impl KeyMaterial {
        fn from_pkcs1_for_test(der: &[u8]) -> Result<KeyMaterial, Error> {
            from_pkcs1(der)
        }
    }

    #[test]
    fn other_inputs_say_what_they_are() {
        let cases = [
            ("not a key", "no PEM private key block"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                "OpenSSH",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
                "not valid base64",
            ),
        ];
        for (input, expected) in cases {
            let msg = message(KeyMaterial::from_pem(input.as_bytes()));
            assert!(msg.contains(expected), "{input}: {msg}");
        }
        // An X25519 key (PKCS#8, another algorithm).
        let x25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIHBj9n8gGNz3MXxQ2YwY5W8ZlZxdh2uBHuSgdNlXgtp3\n-----END PRIVATE KEY-----\n";
        let msg = message(KeyMaterial::from_pem(x25519.as_bytes()));
        assert!(msg.contains("unsupported key type"), "{msg}");
    }

    #[test]
    fn indented_or_rewrapped_pem_still_reads() {
        let indented: String = EC8.lines().map(|l| format!("    {l}\r\n")).collect();
        assert!(KeyMaterial::from_pem(indented.as_bytes()).is_ok());
        let body: String = EC8
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let one_line = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
        assert!(KeyMaterial::from_pem(one_line.as_bytes()).is_ok());
    }
}

//! Private keys made on demand, for tests of code that loads a key file: nothing the crate
//! ships, nothing a test suite commits.

use base64::Engine as _;

use crate::jose::{SigningAlgorithm, SigningKey};

/// A new private key for `algorithm` as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
/// `openssl genpkey` writes one: an RSA key (2048 bits) for the RS and PS algorithms, P-256
/// for ES256, Ed25519 for EdDSA. For a test of code that reads a key file, in place of a key
/// committed to the repository.
///
/// ```
/// use authed::{SigningAlgorithm, SigningKey};
///
/// let pem = authed::testing::new_private_key_pem(SigningAlgorithm::ES256);
/// let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
/// assert_eq!(key.algorithm(), SigningAlgorithm::ES256);
/// ```
///
/// # Panics
///
/// When the operating system's random number generator fails.
pub fn new_private_key_pem(algorithm: SigningAlgorithm) -> String {
    let der = SigningKey::generate_sized(algorithm, 2048)
        .and_then(|key| key.to_pkcs8_der())
        .expect("the OS random number generator works");
    let base64 = base64::engine::general_purpose::STANDARD.encode(&*der);
    let lines: Vec<&str> = base64
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

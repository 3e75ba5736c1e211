//! Issue 19 point 2: keys that never enter the process. A test double stands in for a remote
//! key service (a KMS, an HSM): it holds the private key, answers after a latency (paused
//! time), and can fail or answer with a signature of another key. Every JWT the crate sends —
//! client assertions, JWT bearer grants, DPoP proofs — is signed there; a failure is a typed
//! error, and no request goes out without a signature the provider would accept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AuthedClient, BoxFuture, DpopKey, Error, JwsSigner, OAuthConfig, PublicJwk, SigningAlgorithm,
    SigningKey, TokenSource,
};
use tokio::time::Instant;

const CLIENT: &str = "kms-client";
const LATENCY: Duration = Duration::from_millis(250);

/// The key service's own failure, as its client library would report it.
#[derive(Debug)]
struct ServiceDown;

impl std::fmt::Display for ServiceDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("key service unavailable (503)")
    }
}

impl std::error::Error for ServiceDown {}

/// A remote key service: the private key is on its side; the client sees the public key,
/// the key id and the algorithm, and awaits each signature.
#[derive(Debug)]
struct KeyService {
    /// Stands for the HSM's key; only `sign` touches it.
    key: SigningKey,
    public: PublicJwk,
    kid: String,
    fail: AtomicBool,
    /// Answer with another key's signature (a misconfigured key alias).
    wrong_key: AtomicBool,
    calls: AtomicUsize,
}

impl KeyService {
    fn new(alg: SigningAlgorithm) -> Arc<KeyService> {
        let key = SigningKey::generate(alg).unwrap();
        Arc::new(KeyService {
            public: key.public_jwk().clone().with_kid("kms-key-1"),
            key,
            kid: "kms-key-1".into(),
            fail: AtomicBool::new(false),
            wrong_key: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        })
    }
}

impl JwsSigner for KeyService {
    fn algorithm(&self) -> SigningAlgorithm {
        self.key.algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(LATENCY).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::signing(ServiceDown));
            }
            if self.wrong_key.load(Ordering::SeqCst) {
                let other = SigningKey::generate(self.key.algorithm()).unwrap();
                return other.sign(message).await;
            }
            self.key.sign(message).await
        })
    }
}

fn config(provider: &TestProvider, service: &Arc<KeyService>) -> OAuthConfig {
    OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(CLIENT)
        .private_key(service.clone())
        .clock(provider_clock(provider))
        .build()
        .unwrap()
}

/// One clock for the client and the provider's assertion checks, moved by hand.
fn provider_clock(provider: &TestProvider) -> Arc<ManualClock> {
    let clock = ManualClock::new(SystemTime::now());
    provider.set_clock(clock.clone());
    clock
}

#[tokio::test(start_paused = true)]
async fn client_assertions_wait_for_the_key_service_and_the_provider_accepts_them() {
    for alg in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::PS256,
    ] {
        let provider = TestProvider::start().await;
        let service = KeyService::new(alg);
        provider.register_client_key(CLIENT, service.public_jwk());
        let source = config(&provider, &service).client_credentials().build();
        let started = Instant::now();
        source.token().await.unwrap();
        assert!(
            started.elapsed() >= LATENCY,
            "{alg}: the request waited for the signature"
        );
        assert_eq!(service.calls.load(Ordering::SeqCst), 1);
        assert_eq!(provider.token_requests(), 1);
        let accepted = provider.accepted_assertions();
        assert_eq!(accepted.len(), 1, "{alg}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_service_failure_is_a_typed_error_and_nothing_is_sent() {
    let provider = TestProvider::start().await;
    let service = KeyService::new(SigningAlgorithm::ES256);
    provider.register_client_key(CLIENT, service.public_jwk());
    service.fail.store(true, Ordering::SeqCst);
    let clock = provider_clock(&provider);
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(CLIENT)
        .private_key(service.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let source = config.client_credentials().build();
    let e = source.token().await.unwrap_err();
    assert!(matches!(e, Error::Signing(_)), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(e.kind(), "signing");
    assert_eq!(
        std::error::Error::source(&e).map(ToString::to_string),
        Some("key service unavailable (503)".to_owned())
    );
    assert_eq!(
        provider.token_requests(),
        0,
        "no request without an assertion"
    );

    // The service is back: after the cache's backoff (1 s after a first failure) the same
    // source signs and gets a token.
    service.fail.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_signature_its_public_key_does_not_verify_is_never_sent() {
    let provider = TestProvider::start().await;
    let service = KeyService::new(SigningAlgorithm::EdDSA);
    provider.register_client_key(CLIENT, service.public_jwk());
    service.wrong_key.store(true, Ordering::SeqCst);
    let e = config(&provider, &service)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Signing(_)), "{e:?}");
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_jwt_bearer_grant_signs_at_the_key_service() {
    let provider = TestProvider::start().await;
    let service = KeyService::new(SigningAlgorithm::ES256);
    provider.register_client_key("robot@example.com", service.public_jwk());
    let config = OAuthConfig::builder(provider.token_url())
        .client_id("")
        .build()
        .unwrap();
    let source = config
        .jwt_bearer(service.clone())
        .issuer("robot@example.com")
        .build();
    source.token().await.unwrap();
    assert_eq!(service.calls.load(Ordering::SeqCst), 1);

    service.fail.store(true, Ordering::SeqCst);
    let source = config
        .jwt_bearer(service.clone())
        .issuer("robot@example.com")
        .build();
    assert!(matches!(source.token().await, Err(Error::Signing(_))));
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn dpop_proofs_are_signed_at_the_key_service_and_a_failure_sends_nothing() {
    let provider = TestProvider::start().await;
    let service = KeyService::new(SigningAlgorithm::ES256);
    let key = DpopKey::from_signer(service.clone()).unwrap();
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .dpop_key(key.clone())
        .build()
        .unwrap();
    let client = AuthedClient::builder(config.client_credentials().build())
        .base_url(provider.api_url())
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = client.get("hello").send().await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", provider.dpop_refusals());
    // One proof for the token request, one for the API request, each awaited.
    assert_eq!(service.calls.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= 2 * LATENCY);
    assert_eq!(provider.dpop_proofs(), 2);

    service.fail.store(true, Ordering::SeqCst);
    let e = client.get("hello").send().await.unwrap_err();
    assert!(matches!(e, Error::Signing(_)), "{e:?}");
    assert_eq!(provider.api_requests(), 1, "no API request without a proof");
}

#[tokio::test(start_paused = true)]
async fn a_stored_login_finds_its_remote_dpop_key_by_thumbprint() {
    let service = KeyService::new(SigningAlgorithm::EdDSA);
    let key = DpopKey::from_signer(service.clone()).unwrap();
    let stored = serde_json::to_value(&key).unwrap();
    // Only the public key is stored: the private key is not in this process.
    assert!(stored.get("pkcs8").is_none(), "{stored}");
    assert_eq!(stored["jwk"]["kty"], "OKP");
    assert_eq!(key.to_pkcs8_der(), None);

    let url = "https://api.example/x".parse().unwrap();
    let back: DpopKey = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(back.thumbprint(), key.thumbprint());
    back.proof("GET", &url, Some("at")).await.unwrap();
    assert_eq!(service.calls.load(Ordering::SeqCst), 1);

    // Once this process holds the signer no longer, the stored key cannot sign: a typed
    // error, not a panic or an unsigned proof.
    drop((key, back));
    drop(service);
    let orphan: DpopKey = serde_json::from_value(stored).unwrap();
    let e = orphan.proof("GET", &url, None).await.unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
}

#[test]
fn a_signer_whose_algorithm_does_not_fit_its_key_is_refused_by_build() {
    #[derive(Debug)]
    struct Mislabelled(Arc<KeyService>);
    impl JwsSigner for Mislabelled {
        fn algorithm(&self) -> SigningAlgorithm {
            SigningAlgorithm::RS256
        }
        fn key_id(&self) -> Option<&str> {
            None
        }
        fn public_jwk(&self) -> &PublicJwk {
            self.0.public_jwk()
        }
        fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
            self.0.sign(message)
        }
    }
    let service = KeyService::new(SigningAlgorithm::ES256);
    let e = OAuthConfig::builder("https://as.example/token")
        .client_id(CLIENT)
        .private_key(Mislabelled(service.clone()))
        .build()
        .unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
    assert!(DpopKey::from_signer(Mislabelled(service)).is_err());
}

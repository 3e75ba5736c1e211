//! Keys that never enter the process: `private_key_jwt` client assertions and DPoP proofs
//! signed by a key service (a cloud KMS, an HSM, Vault's transit engine), through the
//! `JwsSigner` trait.
//!
//! Offline: the "key service" is a task standing in for the remote one (it holds the private
//! keys and answers signing requests over a channel, after a delay, as a network call would);
//! the provider is `authed::testing`'s, verifying every assertion and proof. With a real
//! service, `sign` calls its API (for AWS KMS: `Sign` with `MessageType::Raw` and
//! `ECDSA_SHA_256`, then converting the DER signature to the 64-byte `r || s` JWS form), and
//! the public key comes from it once (`GetPublicKey` → `PublicJwk::from_spki_der`; Azure Key
//! Vault and Vault hand out JWKs → `PublicJwk::from_json`).
//!
//! ```sh
//! cargo run --example remote_signer --features testing
//! ```

mod support;

use std::process::ExitCode;
use std::time::Duration;

use authed::testing::TestProvider;
use authed::{
    AuthedClient, BoxFuture, DpopKey, Error, JwsSigner, OAuthConfig, PublicJwk, SigningAlgorithm,
    SigningKey, TokenSource,
};
use tokio::sync::{mpsc, oneshot};

/// A request to the key service: sign these bytes with that key.
struct SignRequest {
    key_name: &'static str,
    message: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// The key service: the private keys live only here. Returns the public JWKs it publishes.
fn start_key_service() -> (mpsc::Sender<SignRequest>, String, String) {
    let client_key = SigningKey::generate(SigningAlgorithm::ES256).expect("a key");
    let dpop_key = SigningKey::generate(SigningAlgorithm::EdDSA).expect("a key");
    let published = (
        client_key.public_jwk().to_value().to_string(),
        dpop_key.public_jwk().to_value().to_string(),
    );
    let (tx, mut rx) = mpsc::channel::<SignRequest>(16);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            // A network round trip.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let key = match request.key_name {
                "client-assertions" => &client_key,
                "dpop" => &dpop_key,
                _ => {
                    let _ = request.reply.send(Err("no such key".into()));
                    continue;
                }
            };
            let signature = key.sign(&request.message).await.map_err(|e| e.to_string());
            let _ = request.reply.send(signature);
        }
    });
    (tx, published.0, published.1)
}

/// The key service's failure, as its client library reports it.
#[derive(Debug)]
struct KeyServiceError(String);

impl std::fmt::Display for KeyServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key service: {}", self.0)
    }
}

impl std::error::Error for KeyServiceError {}

/// One key at the service, as `authed` sees it: the algorithm, the key id, the public key,
/// and a `sign` that asks the service.
#[derive(Debug)]
struct RemoteKey {
    name: &'static str,
    algorithm: SigningAlgorithm,
    public: PublicJwk,
    service: mpsc::Sender<SignRequest>,
}

impl JwsSigner for RemoteKey {
    fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    fn key_id(&self) -> Option<&str> {
        self.public.kid()
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let request = SignRequest {
                key_name: self.name,
                message: message.to_vec(),
                reply,
            };
            let down = || Error::signing(KeyServiceError("unreachable".into()));
            self.service.send(request).await.map_err(|_| down())?;
            answer
                .await
                .map_err(|_| down())?
                .map_err(|e| Error::signing(KeyServiceError(e)))
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (service, client_jwk, dpop_jwk) = start_key_service();
    let client_key = RemoteKey {
        name: "client-assertions",
        algorithm: SigningAlgorithm::ES256,
        public: PublicJwk::from_json(&client_jwk)?.with_kid("kms-2026-01"),
        service: service.clone(),
    };
    let dpop_key = DpopKey::from_signer(RemoteKey {
        name: "dpop",
        algorithm: SigningAlgorithm::EdDSA,
        public: PublicJwk::from_json(&dpop_jwk)?,
        service: service.clone(),
    })?;
    println!(
        "client key {} (thumbprint {}), DPoP key {}",
        client_key.public.kid().unwrap_or("-"),
        client_key.public.thumbprint(),
        dpop_key.thumbprint()
    );

    let provider = TestProvider::start().await;
    provider.register_client_key("reports-job", client_key.public_jwk());
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id("reports-job")
        .private_key(client_key)
        .dpop_key(dpop_key)
        .build()?;
    let source = config.client_credentials().scopes(["reports:read"]).build();
    let client = AuthedClient::builder(source.clone())
        .base_url(provider.api_url())
        .build()?;
    let body: serde_json::Value = client.get("reports").send().await?.json().await?;
    println!("GET /api/reports as {}", body["client_id"]);
    let token = source.token().await?;
    println!(
        "token type {}, bound to {}; {} DPoP proofs and {} assertion verified by the provider",
        token.token_type(),
        provider
            .dpop_jkt_of(token.access_token().secret())
            .unwrap_or_default(),
        provider.dpop_proofs(),
        provider.accepted_assertions().len(),
    );

    // A key service that cannot be reached: a typed error, and no token request is sent.
    let before = provider.token_requests();
    let unreachable = RemoteKey {
        name: "client-assertions",
        algorithm: SigningAlgorithm::ES256,
        public: PublicJwk::from_json(&client_jwk)?,
        service: mpsc::channel(1).0,
    };
    let broken = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id("reports-job")
        .private_key(unreachable)
        .build()?;
    let e = broken
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    println!(
        "a key service that is down: {e} (retryable: {})",
        e.is_retryable()
    );
    assert!(matches!(e, Error::Signing(_)));
    assert_eq!(provider.token_requests(), before);
    drop(service);
    Ok(())
}

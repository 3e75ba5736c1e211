//! A service that authenticates with a private key instead of a client secret
//! (`private_key_jwt`, RFC 7523 §2.2): Okta, Entra certificate credentials, FAPI providers.
//!
//! Offline: an in-process provider (from `authed::testing`) has the client's public JWK
//! registered and verifies every assertion (signature, audience, expiry, one-time `jti`).
//! The example makes a new P-256 key when it starts; with a real provider, load yours with
//! `SigningKey::from_pem(&std::fs::read("client.key")?)` and register `public_jwk()` (or the
//! certificate) there.
//!
//! ```sh
//! cargo run --example private_key_jwt --features testing
//! ```

mod support;

use std::process::ExitCode;

use authed::testing::{TestProvider, new_private_key_pem};
use authed::{
    AuthedClient, ClientAuthMethod, Error, OAuthConfig, SigningAlgorithm, SigningKey, TokenSource,
};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // A new key; with a real provider, the one you registered (`std::fs::read("client.key")?`).
    let pem = new_private_key_pem(SigningAlgorithm::ES256);
    let key = SigningKey::from_pem(pem.as_bytes())?.with_kid("reports-2026");
    println!(
        "a new {} key, RFC 7638 thumbprint {}",
        key.algorithm().as_str(),
        key.thumbprint()
    );

    let provider = TestProvider::start().await;
    provider.register_client_key("reports-job", key.public_jwk());

    // Discovery picks private_key_jwt (the client has a key) and an algorithm the provider
    // lists for it.
    let config = OAuthConfig::discover(provider.issuer())
        .await?
        .client_id("reports-job")
        .private_key(key)
        .build()?;
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    let client =
        AuthedClient::builder(config.client_credentials().scopes(["reports:read"]).build())
            .base_url(provider.api_url())
            .build()?;
    let body: serde_json::Value = client.get("reports").send().await?.json().await?;
    println!("GET /api/reports as {}", body["client_id"]);

    let claims = &provider.accepted_assertions()[0];
    println!(
        "the assertion: iss={} aud={} lifetime={}s jti={}…",
        claims["iss"],
        claims["aud"],
        claims["exp"].as_u64().unwrap_or(0) - claims["iat"].as_u64().unwrap_or(0),
        &claims["jti"].as_str().unwrap_or("")[..6],
    );

    // The same client id with a key the provider does not know: a typed error.
    let other = SigningKey::from_pem(new_private_key_pem(SigningAlgorithm::EdDSA).as_bytes())?
        .with_kid("reports-2026");
    let wrong = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id("reports-job")
        .private_key(other)
        .build()?;
    match wrong.client_credentials().build().token().await {
        Err(Error::InvalidClient(e)) => println!("a wrong key: invalid_client ({e})"),
        Err(e) => return Err(format!("expected invalid_client, got: {e}").into()),
        Ok(_) => return Err("expected invalid_client, got a token".into()),
    }
    Ok(())
}

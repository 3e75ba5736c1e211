//! The main job end to end, offline: a service fetches a protected URL with the client
//! credentials grant.
//!
//! It starts, in this process on 127.0.0.1, a small OAuth provider and a protected API (real
//! HTTP over sockets, from `authed::testing`), then shows the token being reused, refreshed
//! after expiry, replaced after the API rejects it, and the typed error for a wrong secret.
//!
//! ```sh
//! cargo run --example quickstart --features testing
//! ```

mod support;

use std::process::ExitCode;
use std::time::Duration;

use authed::testing::TestProvider;
use authed::{AuthedClient, Error, OAuthConfig};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    // Short-lived tokens, so the refresh shows up within seconds.
    provider.set_token_lifetime(Duration::from_secs(2));
    println!("Started a test provider at {}", provider.base_url());

    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()?;
    let client = AuthedClient::builder(config.client_credentials().scopes(["api:read"]).build())
        .base_url(provider.api_url())
        .build()?;

    println!("\n1. Three requests with one token");
    for item in ["alpha", "beta", "gamma"] {
        let body: serde_json::Value = client
            .get(format!("items/{item}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("   GET /api/items/{item} -> {}", body["message"]);
    }
    println!(
        "   token requests so far: {} (the token was reused)",
        provider.token_requests()
    );

    println!("\n2. After the 2-second token expires");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = client.get("items/delta").send().await?.status();
    println!(
        "   GET /api/items/delta -> {status}; token requests so far: {} (refreshed once)",
        provider.token_requests()
    );

    println!("\n3. The API revokes every token it issued");
    provider.revoke_access_tokens();
    let status = client.get("items/epsilon").send().await?.status();
    println!(
        "   GET /api/items/epsilon -> {status} after one 401, one refresh and one retry; \
         API rejections: {}, token requests: {}",
        provider.api_rejections(),
        provider.token_requests()
    );

    println!("\n4. A wrong client secret");
    let wrong = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .build()?;
    let client = AuthedClient::builder(wrong.client_credentials().build())
        .base_url(provider.api_url())
        .build()?;
    match client.get("items/zeta").send().await {
        Err(e @ Error::InvalidClient(_)) => {
            println!("   typed error, matched as Error::InvalidClient: {e}");
            println!("   is_configuration() = {}", e.is_configuration());
        }
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("a wrong client secret was accepted".into()),
    }

    println!("\nDone: no token or secret was printed along the way.");
    Ok(())
}

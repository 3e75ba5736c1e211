//! authed in a `reqwest_middleware` chain, offline: tokens from the client credentials grant
//! attached by `AuthMiddleware`, composed with reqwest-retry and reqwest-tracing.
//!
//! It starts, in this process on 127.0.0.1, a small OAuth provider and a protected API (from
//! `authed::testing`), then sends requests through the chain: one token for several requests,
//! a rejected token refreshed once and the request sent once more, and the typed error for a
//! request to an origin that may not see the token.
//!
//! ```sh
//! cargo run --example middleware --features middleware,testing
//! ```

mod support;

use std::process::ExitCode;
use std::time::Duration;

use authed::middleware::{AuthMiddleware, authed_error};
use authed::testing::TestProvider;
use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    println!("Started a test provider at {}", provider.base_url());
    let source = provider.config(None).client_credentials().build();

    // Tracing outermost, then authed, then retries: a 5xx is retried with the same token, a
    // 401 comes back to authed, which refreshes once and sends once more.
    let retries = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(50), Duration::from_secs(2))
        .build_with_max_retries(3);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(
            AuthMiddleware::builder(source)
                .allow_origin(provider.base_url())
                .build()?,
        )
        .with(RetryTransientMiddleware::new_with_policy(retries))
        .build();

    println!("\n1. Three requests with one token");
    for item in ["alpha", "beta", "gamma"] {
        let body: serde_json::Value = client
            .get(format!("{}items/{item}", provider.api_url()))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("   GET items/{item} -> {}", body["path"]);
    }
    println!("   token requests so far: {}", provider.token_requests());

    println!("\n2. The API rejects the token: one refresh, the request sent once more");
    provider.revoke_access_tokens();
    let status = client
        .get(format!("{}items/delta", provider.api_url()))
        .send()
        .await?
        .status();
    println!(
        "   GET items/delta -> {status}; token requests: {}, API requests: {}",
        provider.token_requests(),
        provider.api_requests()
    );

    println!("\n3. Another origin never sees the token");
    let err = client
        .get("https://elsewhere.example/steal")
        .send()
        .await
        .expect_err("refused before sending");
    let authed = authed_error(&err).expect("an authed error");
    println!(
        "   error: {authed} (is_configuration: {})",
        authed.is_configuration()
    );
    Ok(())
}

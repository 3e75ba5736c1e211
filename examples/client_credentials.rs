//! Fetch a URL from an API protected by any real OAuth provider, with the client credentials
//! grant.
//!
//! Environment:
//! - `AUTHED_TOKEN_URL`: the provider's token endpoint
//! - `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET`: the client's credentials
//! - `AUTHED_SCOPES`: space-separated scopes (optional)
//! - `AUTHED_AUDIENCE`: the `audience` parameter, for Auth0 and Okta (optional)
//!
//! ```sh
//! AUTHED_TOKEN_URL=https://login.example.com/oauth/token \
//! AUTHED_CLIENT_ID=my-client AUTHED_CLIENT_SECRET=my-secret AUTHED_SCOPES="read" \
//! cargo run --example client_credentials -- https://api.example.com/v1/things
//! ```

use authed::{AuthedClient, OAuthConfig};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the header of this example)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: cargo run --example client_credentials -- <URL to fetch>")?;
    let config = OAuthConfig::builder(env("AUTHED_TOKEN_URL")?)
        .client_id(env("AUTHED_CLIENT_ID")?)
        .client_secret(env("AUTHED_CLIENT_SECRET")?)
        .build()?;
    let mut source = config.client_credentials();
    if let Ok(scopes) = std::env::var("AUTHED_SCOPES") {
        source = source.scopes(scopes.split_whitespace());
    }
    if let Ok(audience) = std::env::var("AUTHED_AUDIENCE") {
        source = source.audience(audience);
    }
    let origin = reqwest::Url::parse(&url)?.origin().ascii_serialization();
    let client = AuthedClient::builder(source.build())
        .allow_origin(origin)
        .build()?;

    let response = client.get(&url).send().await?;
    println!("{} {}", response.status(), url);
    println!("{}", response.text().await?);
    Ok(())
}

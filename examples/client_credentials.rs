//! Fetch a URL from an API protected by any real OAuth provider, with the client credentials
//! grant, configured from the environment by `OAuthConfig::from_env`.
//!
//! Environment (the full list is in the docs of `authed::Env`):
//! - `AUTHED_TOKEN_URL`: the provider's token endpoint, or `AUTHED_ISSUER` to discover it
//! - `AUTHED_CLIENT_ID`, and `AUTHED_CLIENT_SECRET` or `AUTHED_CLIENT_SECRET_FILE`: the
//!   client's credentials
//! - `AUTHED_SCOPES`: space-separated scopes (optional)
//! - `AUTHED_AUDIENCE`: the `audience` parameter, for Auth0 and Okta (optional)
//!
//! ```sh
//! AUTHED_TOKEN_URL=https://login.example.com/oauth/token \
//! AUTHED_CLIENT_ID=my-client AUTHED_CLIENT_SECRET=my-secret AUTHED_SCOPES="read" \
//! cargo run --example client_credentials -- https://api.example.com/v1/things
//! ```

mod support;

use std::process::ExitCode;

use authed::{AuthedClient, Env, OAuthConfig};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: cargo run --example client_credentials -- <URL to fetch>")?;
    let env = Env::process();
    let config = if env.var(Env::ISSUER).is_some() && env.var(Env::TOKEN_URL).is_none() {
        OAuthConfig::discover_from_env().await?
    } else {
        OAuthConfig::from_env()?
    };
    let mut source = config.client_credentials().scopes(env.scopes());
    if let Some(audience) = env.audience() {
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

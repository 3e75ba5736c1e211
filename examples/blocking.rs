//! A synchronous script: no `async`, no `#[tokio::main]`. `authed::blocking` drives the
//! async client on an internal thread, with the same cache and the same refresh rules.
//!
//! Without `AUTHED_API_URL` it runs offline: it starts the in-process test provider (from
//! `authed::testing`, on a runtime of its own, standing in for a real provider) and shows a
//! token reused, refreshed after the API rejects it, and a typed error. Against a real
//! provider, set the variables of `OAuthConfig::from_env` (`AUTHED_TOKEN_URL`,
//! `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET` or `AUTHED_CLIENT_SECRET_FILE`, `AUTHED_SCOPES`,
//! ...) and `AUTHED_API_URL`, the URL to fetch. The same build does both: feature `blocking`
//! for `authed::blocking`, `testing` for the offline provider (your own program needs only
//! `blocking`).
//!
//! ```sh
//! cargo run --example blocking --features blocking,testing
//! AUTHED_TOKEN_URL=https://login.example.com/oauth/token AUTHED_CLIENT_ID=reports-job \
//!     AUTHED_CLIENT_SECRET_FILE=/run/secrets/client AUTHED_API_URL=https://api.example.com/v1/me \
//!     cargo run --example blocking --features blocking,testing
//! ```

mod support;

use std::process::ExitCode;

use authed::testing::TestProvider;
use authed::{AuthedClient, Env, Error, OAuthConfig, blocking};

fn main() -> ExitCode {
    support::exit_code(run())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    if let Some(api_url) = env.var("AUTHED_API_URL") {
        return Ok(against_a_real_provider(&env, &api_url)?);
    }

    // The test provider is an async server: it gets a runtime of its own. The rest of the
    // program never touches it.
    let provider_runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let provider = provider_runtime.block_on(TestProvider::start());
    println!("Started a test provider at {}", provider.base_url());

    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()?;
    let client = blocking::AuthedClient::new(
        AuthedClient::builder(config.client_credentials().scopes(["api:read"]).build())
            .base_url(provider.api_url())
            .build()?,
    );

    println!("\n1. Three blocking requests with one token");
    for item in ["alpha", "beta", "gamma"] {
        let body: serde_json::Value = client
            .get(format!("items/{item}"))
            .send()?
            .error_for_status()?
            .json()?;
        println!("   GET /api/items/{item} -> {}", body["message"]);
    }
    println!("   token requests: {}", provider.token_requests());

    println!("\n2. The API revokes every token it issued");
    provider.revoke_access_tokens();
    let status = client.get("items/delta").send()?.status();
    println!(
        "   GET /api/items/delta -> {status} after one 401, one refresh and one retry; \
         token requests: {}",
        provider.token_requests()
    );

    println!("\n3. The token itself, for a library that wants a header");
    let token = client.source().token()?;
    let left = token
        .expires_at()
        .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
        .unwrap_or_default();
    println!(
        "   a {} token, valid for {} more seconds (its value is never printed)",
        token.token_type(),
        left.as_secs()
    );

    println!("\n4. A wrong client secret");
    let wrong = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .build()?;
    let wrong = blocking::Source::new(wrong.client_credentials().build());
    match wrong.token() {
        Err(e) if e.is_invalid_client() => println!("   typed error: {e}"),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("a wrong client secret was accepted".into()),
    }

    println!("\nDone.");
    Ok(())
}

fn against_a_real_provider(env: &Env, api_url: &str) -> Result<(), Error> {
    let config = env.config()?;
    let origin = url::Url::parse(api_url)
        .map_err(|e| Error::Config(format!("AUTHED_API_URL is not a URL: {e}")))?
        .origin()
        .ascii_serialization();
    let client = blocking::AuthedClient::new(
        AuthedClient::builder(config.client_credentials().scopes(env.scopes()).build())
            .allow_origin(origin)
            .build()?,
    );
    let response = client.get(api_url).send()?;
    println!("GET {api_url} -> {}", response.status());
    println!(
        "{}",
        response.text()?.chars().take(2000).collect::<String>()
    );
    Ok(())
}

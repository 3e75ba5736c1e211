//! One `reqwest_middleware` client for many users, offline: each request names, in its
//! extensions, whose login it goes with (`authed::middleware::Login`), the way reqwest-retry
//! and reqwest-tracing take per-request settings; a public endpoint goes without a token.
//!
//! It starts, in this process on 127.0.0.1, a small OAuth provider and a protected API (from
//! `authed::testing`), keeps two users' logins in a `UserSources` registry (stored as a
//! sign-in would store them), and sends requests for each.
//!
//! ```sh
//! cargo run --example middleware_logins --features middleware,testing
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::middleware::{AuthMiddleware, Login, authed_error};
use authed::testing::TestProvider;
use authed::{AccessToken, MemoryStore, RefreshToken, Token, UserSources};
use reqwest_middleware::ClientBuilder;

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    println!("Started a test provider at {}", provider.base_url());
    let config = provider.config(None);

    // The users' logins, as `AuthorizationCode::complete` would have stored them. Their
    // access tokens are unknown to the API: the first request of each is refused, and that
    // user's login alone is refreshed with its refresh token.
    let store = Arc::new(MemoryStore::new());
    let users = UserSources::builder(config.clone(), store.clone()).build();
    for user in ["alice", "bob"] {
        let token = Token::new(AccessToken::new(format!("stale-{user}")))
            .with_lifetime(SystemTime::now(), Duration::from_secs(3600))
            .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token())));
        let login = config
            .refresh_token_source()
            .store(store.clone())
            .key(format!("user:{user}"))
            .from_token(token)
            .await?;
        users.insert(login);
    }

    let client = ClientBuilder::new(
        // Redirects are left to the middleware, which keeps them within the allowed origins.
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    )
    .with(
        AuthMiddleware::builder_for_users(users)
            .allow_origin(provider.api_url())
            .build()?,
    )
    .build();

    let url = format!("{}me", provider.api_url());
    for user in ["user:alice", "user:bob", "user:alice"] {
        let response = client
            .get(&url)
            .with_extension(Login::user(user))
            .send()
            .await?;
        println!("GET {url} as {user}: {}", response.status());
    }
    println!(
        "token requests: {} (one refresh per user, after the API refused the stale token)",
        provider.token_requests()
    );

    // No token at all: the request goes out as it is, and the API refuses it.
    let anonymous = client
        .get(&url)
        .with_extension(Login::Anonymous)
        .send()
        .await?;
    println!("GET {url} without a token: {}", anonymous.status());

    // A user nobody signed in: a typed error that says to sign in, and nothing sent.
    let nobody = client
        .get(&url)
        .with_extension(Login::user("user:carol"))
        .send()
        .await;
    if let Err(e) = &nobody
        && let Some(e) = authed_error(e)
    {
        println!(
            "GET {url} as user:carol: {e} (sign in again: {})",
            e.requires_reauthorization()
        );
    }
    Ok(())
}

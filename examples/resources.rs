//! Tokens for several APIs from one sign-in (RFC 8707 resource indicators, the model of
//! MSAL's `get_token(scopes)` and of MCP clients): the user signs in once, naming every
//! resource; each API then gets its own audience-bound token from the login, while all of
//! them share the login's one refresh token, which the provider rotates on every refresh.
//!
//! Offline: an in-process provider (from `authed::testing`) plays the provider, the user's
//! browser, and three resource servers that each accept only their own tokens. The example
//! calls all three at once, again after every token expired, and shows that the refresh
//! token went from one refresh to the next without ever being presented twice.
//!
//! ```sh
//! cargo run --example resources --features testing
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{AuthedClient, MemoryStore, TokenSource, TokenStore};

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    // A clock the example moves, instead of waiting an hour for tokens to expire.
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    let apis = ["calendar", "contacts", "files"].map(|name| provider.resource_url(name));

    // One sign-in naming every resource the app will call (RFC 8707 §2.1).
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let mut flow = config
        .authorization_code("http://127.0.0.1:8400/callback")
        .scopes(["openid", "offline_access"])
        .store(store.clone())
        .key("alice");
    for api in &apis {
        flow = flow.resource(api);
    }
    let flow = flow.build()?;
    let pending = flow.authorize();
    let callback = provider.approve(pending.url()).await; // plays the browser
    let login = flow.complete_url(pending, &callback).await?;
    println!(
        "signed in as {}",
        login.id_token_claims().map_or("?", |c| c.sub())
    );

    // One client per API, each with the login's token source for that resource.
    let mut clients = Vec::new();
    for api in &apis {
        let source = login.for_resource(api).build()?;
        clients.push(
            AuthedClient::builder(source)
                .base_url(format!("{api}/"))
                .build()?,
        );
    }

    for round in 1..=2 {
        // Every API at once, ten requests each: one token request per API.
        let before = provider.token_requests();
        let mut calls = Vec::new();
        for client in &clients {
            for _ in 0..10 {
                let client = client.clone();
                calls.push(tokio::spawn(async move {
                    let answer: serde_json::Value = client
                        .get("items")
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    Ok::<_, authed::Error>(answer["resource"].as_str().unwrap_or("").to_owned())
                }));
            }
        }
        for call in calls {
            let resource = call.await??;
            assert!(apis.contains(&resource));
        }
        println!(
            "round {round}: 30 API calls to 3 resource servers, {} token requests",
            provider.token_requests() - before
        );
        clock.advance(Duration::from_secs(3600)); // every access token expires
    }

    // Each API's token is for that API only: the calendar refuses the files token.
    let files = clients[2].get("items").send().await?;
    println!("files answers {} with its own token", files.status());
    let files_token = login.for_resource(&apis[2]).build()?.token().await?;
    let refused = reqwest::Client::new()
        .get(format!("{}/items", apis[0]))
        .bearer_auth(files_token.access_token().secret())
        .send()
        .await?;
    println!("calendar answers {} to the files token", refused.status());

    // The refresh token: rotated at every refresh, each one presented once, the live one in
    // the store.
    let presented = provider.presented_refresh_tokens();
    let mut distinct = presented.clone();
    distinct.sort();
    distinct.dedup();
    let stored = store.load("alice").await?.ok_or("the login is stored")?;
    let live = stored.refresh_token().ok_or("with its refresh token")?;
    println!(
        "{} refreshes, {} distinct refresh tokens presented, {} invalid_grant; the stored one is live: {}",
        presented.len(),
        distinct.len(),
        provider.invalid_grants(),
        provider.refresh_token_is_live(live.secret())
    );
    assert_eq!(distinct.len(), presented.len());
    assert_eq!(provider.invalid_grants(), 0);
    Ok(())
}

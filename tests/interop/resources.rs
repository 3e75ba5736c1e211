//! Several resources, one login (RFC 8707 §2.2) against oidc-provider with
//! `resourceIndicators` on, rotating refresh tokens and reuse detection (presenting a spent
//! refresh token revokes the whole grant): resource servers at `<issuer>/rs/<name>/` take
//! only tokens issued for them. The client's clock is moved instead of waiting: the server
//! refreshes whenever asked, and the client asks when its clock says the token expired.

use std::time::SystemTime;

use super::oidc::{Browser, REDIRECT_URI, RP};
use super::*;
use authed::testing::ManualClock;
use authed::{FileStore, TokenStore};

const SCOPES: [&str; 3] = ["openid", "offline_access", "api:read"];

async fn config(server: &Server, clock: Arc<ManualClock>) -> OAuthConfig {
    OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(RP)
        .client_secret("authed-rp-secret")
        .clock(clock)
        .build()
        .unwrap()
}

fn api(source: Arc<dyn TokenSource>, resource: &str) -> AuthedClient {
    AuthedClient::builder(source)
        .base_url(format!("{resource}/"))
        .build()
        .unwrap()
}

async fn get(client: &AuthedClient) -> Value {
    let response = client.get("items").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh_counts(server: &Server) -> (u64, u64) {
    let c = server_counts(server).await;
    (
        c["refresh"].as_u64().unwrap(),
        c["invalid_grant"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn tokens_for_several_resources_from_one_login_survive_rotation_and_reuse_detection() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let clock = ManualClock::new(SystemTime::now());
    let config = config(&server, clock.clone()).await;
    let resources: Vec<String> = ["calendar", "contacts", "files"]
        .iter()
        .map(|n| server.url(&format!("/rs/{n}")))
        .collect();
    let dir = std::env::temp_dir().join(format!("authed-interop-rs-{}", std::process::id()));
    let path = dir.join("tokens.json");
    let mut flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .store(Arc::new(FileStore::new(&path)))
        .key("alice");
    for r in &resources {
        flow = flow.resource(r);
    }
    let login = Browser::new().sign_in(&flow.build().unwrap()).await;
    // A second process: its own store handle (its own file lock) on the same login.
    let other_store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));
    let other = config
        .refresh_token_source()
        .store(other_store)
        .key("alice")
        .from_store()
        .await
        .unwrap()
        .unwrap();

    let mut clients = Vec::new();
    for process in [&login, &other] {
        for r in &resources {
            let source: Arc<dyn TokenSource> = Arc::new(process.for_resource(r).build().unwrap());
            clients.push((r.clone(), api(source, r)));
        }
    }
    let clients = Arc::new(clients);
    for round in 1..=3u64 {
        // Every client of both processes, ten requests each, all at once.
        let mut tasks = Vec::new();
        for i in 0..clients.len() {
            for _ in 0..10 {
                let clients = clients.clone();
                tasks.push(tokio::spawn(async move {
                    let (resource, client) = &clients[i];
                    let body = get(client).await;
                    assert_eq!(body["resource"].as_str(), Some(resource.as_str()));
                    assert_eq!(body["sub"], "alice");
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        // One refresh per resource per process per round, none refused.
        assert_eq!(refresh_counts(&server).await, (6 * round, 0));
        clock.advance(Duration::from_secs(3600));
    }
    // The login lives: its own token refreshes with the last rotated refresh token.
    login.token().await.unwrap();
    assert_eq!(refresh_counts(&server).await, (19, 0));

    // A resource server refuses another resource's token.
    let calendar = login.for_resource(&resources[0]).build().unwrap();
    let token = calendar.token().await.unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{}/items", resources[1]))
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let _ = std::fs::remove_dir_all(&dir);
}

/// oidc-provider 9 rotates the refresh token before it checks the resource: its
/// `invalid_target` answer means the refresh token is spent, and the new one was never sent.
#[tokio::test]
async fn a_resource_outside_the_grant_never_costs_a_reuse_of_the_refresh_token() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let clock = ManualClock::new(SystemTime::now());
    let config = config(&server, clock).await;
    let granted = server.url("/rs/granted");
    let store: Arc<dyn TokenStore> = Arc::new(authed::MemoryStore::new());
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .resource(&granted)
        .store(store.clone())
        .key("alice")
        .build()
        .unwrap();
    let login = Browser::new().sign_in(&flow).await;
    // The login knows what its sign-in named: anything else is refused before sending.
    let e = login
        .for_resource(server.url("/rs/not-granted"))
        .build()
        .unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
    let token = login
        .for_resource(&granted)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert!(
        token.refresh_token().is_none(),
        "the refresh token stays the login's"
    );

    // A login resumed without its resources does not know: the server's invalid_target ends
    // it, and its (spent) refresh token is not presented again.
    let resumed = config
        .refresh_token_source()
        .store(store.clone())
        .key("alice")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    let e = resumed
        .for_resource(server.url("/rs/not-granted"))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(e.oauth_error().unwrap().error, "invalid_target", "{e:?}");
    let again = resumed
        .for_resource(&granted)
        .build()
        .unwrap()
        .token()
        .await;
    assert!(again.unwrap_err().is_revoked());
    assert_eq!(
        refresh_counts(&server).await.1,
        0,
        "no invalid_grant: nothing reused"
    );
}

#[tokio::test]
async fn a_sign_in_for_one_resource_names_it_on_the_code_exchange_and_every_refresh() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let clock = ManualClock::new(SystemTime::now());
    let config = config(&server, clock.clone()).await;
    let mcp = server.url("/rs/mcp");
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .resource(&mcp)
        .build()
        .unwrap();
    let login: Arc<dyn TokenSource> = Arc::new(Browser::new().sign_in(&flow).await);
    let client = api(login, &mcp);
    assert_eq!(get(&client).await["resource"].as_str(), Some(mcp.as_str()));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(get(&client).await["resource"].as_str(), Some(mcp.as_str()));
    assert_eq!(refresh_counts(&server).await, (1, 0));
}

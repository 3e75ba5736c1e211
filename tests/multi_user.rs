//! Many users in one app: users signed in against the in-process provider, their logins in a
//! `UserSources` registry, and every request sent through ONE shared `AuthedClient` on
//! behalf of one user.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AuthedClient, AuthorizationCode, Error, MemoryStore, OAuthConfig, ObservedStore,
    RefreshTokenSource, StoreChange, TokenSource, TokenStore, UserSources,
};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A store that records every change, as `saved:KEY` / `deleted:KEY`.
fn recording_store() -> (Arc<ObservedStore<MemoryStore>>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let changes = log.clone();
    let store = ObservedStore::new(MemoryStore::new(), move |change| {
        let entry = match change {
            StoreChange::Saved { key, .. } => format!("saved:{key}"),
            StoreChange::Deleted { key } => format!("deleted:{key}"),
            _ => "other".to_owned(),
        };
        changes.lock().unwrap().push(entry);
    });
    (Arc::new(store), log)
}

fn flow(config: &OAuthConfig, store: Arc<dyn TokenStore>) -> AuthorizationCode {
    config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .store(store)
        .build()
        .unwrap()
}

/// Signs `sub` in: the provider's `/authorize` approves at once and redirects to the callback.
async fn sign_in(
    provider: &TestProvider,
    flow: &AuthorizationCode,
    sub: &str,
) -> RefreshTokenSource {
    provider.set_subject(sub);
    let pending = flow.authorize();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(pending.url()).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    flow.complete_url(pending, &callback).await.unwrap()
}

fn access_token(login: &RefreshTokenSource) -> String {
    login.current().unwrap().access_token().secret().to_owned()
}

/// An API that answers 200 and records each request's `Authorization` header.
async fn recording_api() -> (MockServer, Arc<Mutex<Vec<String>>>) {
    let api = MockServer::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    Mock::given(method("GET"))
        .respond_with(move |request: &Request| {
            let auth = request
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            log.lock().unwrap().push(auth);
            ResponseTemplate::new(200)
        })
        .mount(&api)
        .await;
    (api, seen)
}

fn shared_client(api: &MockServer) -> AuthedClient {
    AuthedClient::builder_for_users()
        .base_url(api.uri())
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_shared_client_sends_each_request_with_its_own_users_token() {
    let provider = TestProvider::start().await;
    let (store, changes) = recording_store();
    let config = provider.config(None);
    let flow = flow(&config, store.clone());
    let users = UserSources::builder(config, store.clone()).build();
    let alice = sign_in(&provider, &flow, "alice").await;
    let bob = sign_in(&provider, &flow, "bob").await;
    // Keyed by who signed in: two users never share a stored login.
    assert_ne!(alice.key(), bob.key());
    assert_eq!(alice.id_token_claims().unwrap().sub(), "alice");
    assert_ne!(access_token(&alice), access_token(&bob));
    assert_eq!(
        store
            .load(alice.key())
            .await
            .unwrap()
            .unwrap()
            .access_token(),
        alice.current().unwrap().access_token()
    );
    assert_eq!(
        store.load(bob.key()).await.unwrap().unwrap().access_token(),
        bob.current().unwrap().access_token()
    );
    users.insert(alice.clone());
    users.insert(bob.clone());

    let (api, seen) = recording_api().await;
    let client = shared_client(&api);
    for (user, path) in [
        (&alice, "a/1"),
        (&bob, "b/1"),
        (&alice, "a/2"),
        (&bob, "b/2"),
    ] {
        let login = users.get(user.key()).await.unwrap().unwrap();
        let response = client.get(path).source(login).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let (a, b) = (access_token(&alice), access_token(&bob));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("Bearer {a}"),
            format!("Bearer {b}"),
            format!("Bearer {a}"),
            format!("Bearer {b}")
        ]
    );
    // Sign-ins saved the logins; requests changed nothing in the store.
    assert_eq!(
        changes.lock().unwrap().len(),
        2,
        "{:?}",
        changes.lock().unwrap()
    );
    // Nothing refreshed: one code exchange per user.
    assert_eq!(provider.token_requests(), 2);

    // The origin rules stay the client's, whoever the request is for.
    let e = client
        .get("https://elsewhere.example/")
        .source(alice.clone())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedOrigin { .. }), "{e:?}");
    // A client for users has no token of its own.
    let e = client.get("a/3").send().await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_401_for_one_user_refreshes_only_that_users_login() {
    let provider = TestProvider::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let config = provider.config(None);
    let flow = flow(&config, store.clone());
    let alice = sign_in(&provider, &flow, "alice").await;
    let bob = sign_in(&provider, &flow, "bob").await;
    let (alice_before, bob_before) = (access_token(&alice), access_token(&bob));

    let api = MockServer::start().await;
    // Alice's token is rejected (revoked at the API); any other token is accepted.
    Mock::given(header(
        "authorization",
        format!("Bearer {alice_before}").as_str(),
    ))
    .respond_with(
        ResponseTemplate::new(401)
            .insert_header("www-authenticate", "Bearer error=\"invalid_token\""),
    )
    .with_priority(1)
    .mount(&api)
    .await;
    let (_, seen) = {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        Mock::given(method("GET"))
            .respond_with(move |request: &Request| {
                log.lock().unwrap().push(
                    request.headers["authorization"]
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
                ResponseTemplate::new(200)
            })
            .with_priority(2)
            .mount(&api)
            .await;
        ((), seen)
    };
    let client = shared_client(&api);

    let response = client.get("me").source(bob.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = client.get("me").source(alice.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let alice_after = access_token(&alice);
    assert_ne!(alice_after, alice_before, "alice's login was refreshed");
    assert_eq!(
        access_token(&bob),
        bob_before,
        "bob's login was not touched"
    );
    // Two code exchanges and one refresh: alice's.
    assert_eq!(provider.token_requests(), 3);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("Bearer {bob_before}"),
            format!("Bearer {alice_after}")
        ]
    );
    // Her stored login is the refreshed one; his is unchanged.
    assert_eq!(
        store
            .load(alice.key())
            .await
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        alice_after
    );
    assert_eq!(
        store
            .load(bob.key())
            .await
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        bob_before
    );
}

#[tokio::test]
async fn idle_sources_leave_memory_but_not_the_store_and_load_again_as_the_same_login() {
    let provider = TestProvider::start().await;
    let (store, changes) = recording_store();
    let config = provider.config(None);
    let flow = flow(&config, store.clone());
    let users = UserSources::builder(config, store.clone())
        .idle_timeout(Duration::from_secs(600))
        .build();
    let alice = sign_in(&provider, &flow, "alice").await;
    let bob = sign_in(&provider, &flow, "bob").await;
    let saved = changes.lock().unwrap().clone();

    // Only the in-memory idle clock is paused; no HTTP happens while it is.
    tokio::time::pause();
    users.insert(alice.clone());
    users.insert(bob.clone());
    assert_eq!(users.len(), 2);
    tokio::time::advance(Duration::from_secs(599)).await;
    // Bob is used; Alice is not.
    assert!(users.get(bob.key()).await.unwrap().is_some());
    assert_eq!(users.evict_idle(), 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(users.evict_idle(), 1);
    assert_eq!(users.len(), 1);
    // Long idle: dropped by the lazy sweep of the next call, without `evict_idle`.
    tokio::time::advance(Duration::from_secs(1200)).await;
    assert!(users.get("nobody signed in").await.unwrap().is_none());
    assert!(users.is_empty(), "{}", users.len());
    // Dropping from memory touched nothing in the store.
    assert_eq!(*changes.lock().unwrap(), saved);

    // Loaded again from the store: the same login, and still each user's own.
    let alice_again = users.get(alice.key()).await.unwrap().unwrap();
    let bob_again = users.get(bob.key()).await.unwrap().unwrap();
    tokio::time::resume();
    assert_eq!(alice_again.key(), alice.key());
    assert_eq!(access_token(&alice_again), access_token(&alice));
    assert_eq!(access_token(&bob_again), access_token(&bob));
    assert_eq!(users.len(), 2);
    assert_eq!(*changes.lock().unwrap(), saved);
    assert_eq!(provider.token_requests(), 2);

    // `remove` forgets in memory only; logout is what deletes the stored login.
    assert!(users.remove(alice.key()).is_some());
    assert!(store.load(alice.key()).await.unwrap().is_some());
    let _ = alice_again.logout().await.unwrap();
    assert!(users.get(alice.key()).await.unwrap().is_none());
    assert!(users.get(bob.key()).await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_first_uses_of_one_user_share_one_source_and_one_refresh() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let config = provider.config(Some(clock.clone()));
    let flow = flow(&config, store.clone());
    let alice = sign_in(&provider, &flow, "alice").await;
    let bob = sign_in(&provider, &flow, "bob").await;
    let users = UserSources::builder(config, store.clone()).build();
    // Both stored logins' access tokens are expired now.
    clock.advance(Duration::from_secs(2 * 3600));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (users, key) = (users.clone(), alice.key().to_owned());
        tasks.spawn(async move {
            let login = users.get(&key).await.unwrap().unwrap();
            login
                .token()
                .await
                .unwrap()
                .access_token()
                .secret()
                .to_owned()
        });
    }
    let tokens = tasks.join_all().await;
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");
    assert_ne!(tokens[0], access_token(&alice));
    // Two code exchanges, then one refresh for alice, however many requests wanted her.
    assert_eq!(provider.token_requests(), 3);
    assert_eq!(users.len(), 1);
    // Bob's login was not touched.
    assert_eq!(
        store
            .load(bob.key())
            .await
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        access_token(&bob)
    );
}

#[tokio::test]
async fn the_registry_holds_at_most_max_users_and_drops_the_least_recently_used() {
    let provider = TestProvider::start().await;
    let (store, changes) = recording_store();
    let config = provider.config(None);
    let flow = flow(&config, store.clone());
    let users = UserSources::builder(config, store.clone())
        .max_users(2)
        .build();
    let mut logins = Vec::new();
    for sub in ["u1", "u2", "u3"] {
        logins.push(sign_in(&provider, &flow, sub).await);
    }
    tokio::time::pause();
    users.insert(logins[0].clone());
    tokio::time::advance(Duration::from_secs(1)).await;
    users.insert(logins[1].clone());
    tokio::time::advance(Duration::from_secs(1)).await;
    // u1 used again: u2 is now the least recently used.
    users.get(logins[0].key()).await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    users.insert(logins[2].clone());
    assert_eq!(users.len(), 2);
    assert!(users.remove(logins[1].key()).is_none(), "u2 was dropped");
    assert!(users.remove(logins[0].key()).is_some());
    tokio::time::resume();
    assert!(
        !changes
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("deleted:")),
        "{:?}",
        changes.lock().unwrap()
    );
    // Dropped from memory only: loaded again from the store.
    let u2 = users.get(logins[1].key()).await.unwrap().unwrap();
    assert_eq!(access_token(&u2), access_token(&logins[1]));
}

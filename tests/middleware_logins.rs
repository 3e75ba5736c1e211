//! Issue 21 point 2: a request through `AuthMiddleware` names its token in its extensions
//! (`Login`): a signed-in user's login from a `UserSources` registry, a source of its own, or
//! none at all, the way reqwest-retry and reqwest-tracing take per-request settings.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use authed::middleware::{AuthMiddleware, Login, authed_error};
use authed::testing::TestProvider;
use authed::{
    AccessToken, Error, MemoryStore, OAuthConfig, RefreshToken, StaticToken, Token, UserSources,
};
use reqwest_middleware::ClientBuilder;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// An API that answers 200 and records each request's `Authorization` header ("" for none).
async fn recording_api() -> (MockServer, Arc<Mutex<Vec<String>>>) {
    let api = MockServer::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    Mock::given(wiremock::matchers::any())
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

/// A registry holding the logins of `user:a` and `user:b`, whose access tokens are `at-a`
/// and `at-b` and whose refresh tokens the provider knows.
async fn registry(provider: &TestProvider, config: &OAuthConfig) -> UserSources {
    let store = Arc::new(MemoryStore::new());
    let users = UserSources::builder(config.clone(), store.clone()).build();
    for user in ["a", "b"] {
        let token = Token::new(AccessToken::new(format!("at-{user}")))
            .with_lifetime(SystemTime::now(), Duration::from_secs(3600))
            .with_refresh_token(Some(RefreshToken::new(provider.issue_refresh_token())));
        let login = config
            .refresh_token_source()
            .store(store.clone())
            .key(format!("user:{user}"))
            .from_token(token)
            .await
            .unwrap();
        users.insert(login);
    }
    users
}

#[tokio::test]
async fn each_request_carries_the_login_it_names() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let (api, seen) = recording_api().await;
    let (elsewhere, elsewhere_seen) = recording_api().await;
    let users = registry(&provider, &config).await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(
            AuthMiddleware::builder(StaticToken::new("app"))
                .users(users)
                .allow_origin(api.uri())
                .build()
                .unwrap(),
        )
        .build();
    let url = format!("{}/me", api.uri());
    client.get(&url).send().await.unwrap();
    client
        .get(&url)
        .with_extension(Login::user("user:a"))
        .send()
        .await
        .unwrap();
    client
        .get(&url)
        .with_extension(Login::user("user:b"))
        .send()
        .await
        .unwrap();
    client
        .get(&url)
        .with_extension(Login::source(StaticToken::from_token(Token::new(
            AccessToken::new("own"),
        ))))
        .send()
        .await
        .unwrap();
    client
        .get(&url)
        .with_extension(Login::Anonymous)
        .send()
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer app", "Bearer at-a", "Bearer at-b", "Bearer own", ""]
    );

    // Without a token there is nothing to confine: any origin, sent as it is.
    client
        .get(format!("{}/public", elsewhere.uri()))
        .with_extension(Login::Anonymous)
        .send()
        .await
        .unwrap();
    assert_eq!(*elsewhere_seen.lock().unwrap(), [""]);
    // With one, the origin rule holds whichever login it is.
    let err = client
        .get(format!("{}/x", elsewhere.uri()))
        .with_extension(Login::user("user:a"))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        authed_error(&err),
        Some(Error::UntrustedOrigin { .. })
    ));
    assert_eq!(elsewhere_seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_user_without_a_login_and_a_request_without_a_login_are_typed_errors() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let (api, seen) = recording_api().await;
    let users = registry(&provider, &config).await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(
            AuthMiddleware::builder_for_users(users)
                .allow_origin(api.uri())
                .build()
                .unwrap(),
        )
        .build();
    let url = format!("{}/me", api.uri());
    let err = client
        .get(&url)
        .with_extension(Login::user("user:nobody"))
        .send()
        .await
        .unwrap_err();
    let e = authed_error(&err).unwrap();
    assert!(e.requires_reauthorization(), "{e:?}");
    assert!(matches!(e, Error::TokenRevoked(o) if o.error == "login_required"));

    let err = client.get(&url).send().await.unwrap_err();
    assert!(authed_error(&err).unwrap().is_configuration());
    assert!(seen.lock().unwrap().is_empty(), "nothing sent");

    // A user's login works, and the registry is not needed for a source of its own.
    client
        .get(&url)
        .with_extension(Login::user("user:b"))
        .send()
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Bearer at-b"]);
    assert_eq!(provider.token_requests(), 0);
}

/// A 401 for one user refreshes that user's login only, with that user's refresh token.
#[tokio::test]
async fn a_rejected_users_token_refreshes_that_login_only() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let users = registry(&provider, &config).await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(
            AuthMiddleware::builder_for_users(users.clone())
                .allow_origin(provider.api_url())
                .build()
                .unwrap(),
        )
        .build();
    // `at-a` is not a token the provider's API knows: 401, refresh, 200.
    let resp = client
        .get(format!("{}me", provider.api_url()))
        .with_extension(Login::user("user:a"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let forms = provider.token_forms();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0]["grant_type"], "refresh_token");
    let a = users.get("user:a").await.unwrap().unwrap();
    let b = users.get("user:b").await.unwrap().unwrap();
    assert_ne!(a.current().unwrap().access_token().secret(), "at-a");
    assert_eq!(b.current().unwrap().access_token().secret(), "at-b");
}

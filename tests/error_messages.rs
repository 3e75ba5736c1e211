//! What a person reads: representative errors, printed with `{}` and with their whole chain of
//! sources (as `anyhow`/`eyre` reports do). Each says what happened, no text appears twice in
//! the chain, and no secret appears in it or in `Debug`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::{
    AccessToken, AuthedClient, Callback, Error, MemoryStore, OAuthConfig, OAuthConfigBuilder,
    RefreshToken, RetryPolicy, Token, TokenSource,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_SECRET: &str = "client-secret-do-not-print";
const REFRESH_TOKEN: &str = "refresh-token-do-not-print";
const ACCESS_TOKEN: &str = "access-token-do-not-print";
const CODE: &str = "authorization-code-do-not-print";
const SECRETS: &[&str] = &[CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, CODE];

/// The error and each of its sources, as text.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut links = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        links.push(cause.to_string());
        next = cause.source();
    }
    links
}

/// Checks what a person reads, and returns the chain joined as a report prints it.
#[track_caller]
fn check(e: &Error, says: &str) -> String {
    let links = chain(e);
    let display = &links[0];
    assert!(
        display.contains(says),
        "{display:?} should say {says:?}; full chain {links:?}"
    );
    assert!(!display.ends_with('.'), "no trailing period: {display:?}");
    assert!(
        !display.starts_with(|c: char| c.is_uppercase()),
        "lowercase message: {display:?}"
    );
    for (i, a) in links.iter().enumerate() {
        assert!(!a.trim().is_empty(), "empty link in {links:?}");
        for (j, b) in links.iter().enumerate() {
            assert!(
                i == j || !a.contains(b.as_str()),
                "{b:?} appears twice in the chain {links:?}"
            );
        }
    }
    let report = links.join(": ");
    let debug = format!("{e:?}");
    for secret in SECRETS {
        assert!(!report.contains(secret), "secret in {report:?}");
        assert!(!debug.contains(secret), "secret in {debug:?}");
    }
    println!("{report}");
    report
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

async fn provider(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn config_at(token_url: String) -> OAuthConfigBuilder {
    OAuthConfig::builder(token_url)
        .client_id("app")
        .client_secret(CLIENT_SECRET)
        .retry(RetryPolicy::none())
}

fn config_for(server: &MockServer) -> OAuthConfig {
    config_at(format!("{}/token", server.uri()))
        .authorization_url(format!("{}/authorize", server.uri()))
        .build()
        .unwrap()
}

async fn client_credentials_error(config: OAuthConfig) -> Error {
    config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err()
}

/// The `state` the sign-in put in its URL, as the provider would send it back.
fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_provider_error_names_what_happened_and_its_code_once() {
    let server = provider(json(
        401,
        serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"}),
    ))
    .await;
    let e = client_credentials_error(config_for(&server)).await;
    assert!(e.is_invalid_client());
    let report = check(&e, "the provider rejected the client credentials");
    assert_eq!(
        report,
        "the provider rejected the client credentials: invalid_client (HTTP 401): client \
         authentication failed"
    );
    assert_eq!(report.matches("invalid_client").count(), 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_says_the_grant_is_gone() {
    let server = provider(json(400, serde_json::json!({"error": "invalid_grant"}))).await;
    let issued = SystemTime::now() - Duration::from_secs(7200);
    let token = Token::new(AccessToken::new(ACCESS_TOKEN))
        .with_lifetime(issued, Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(REFRESH_TOKEN)));
    let login = config_for(&server)
        .refresh_token_source()
        .store(Arc::new(MemoryStore::new()))
        .key("user")
        .from_token(token)
        .await
        .unwrap();
    let e = login.token().await.unwrap_err();
    assert!(e.is_revoked());
    check(
        &e,
        "the grant was revoked or is no longer valid: invalid_grant (HTTP 400)",
    );
}

#[tokio::test]
async fn a_refused_authorization_does_not_repeat_its_prefix() {
    let server = MockServer::start().await;
    let flow = config_for(&server)
        .authorization_code("http://127.0.0.1:9/callback")
        .build()
        .unwrap();
    let pending = flow.authorize();
    let state = state_of(pending.url());
    let callback = Callback::from_query(&format!(
        "error=access_denied&error_description=the+user+said+no&state={state}"
    ));
    let e = flow.complete(pending, &callback).await.unwrap_err();
    assert!(e.is_access_denied());
    let report = check(
        &e,
        "the authorization was refused: access_denied: the user said no",
    );
    assert!(!report.to_lowercase().contains("access denied"), "{report}");
}

#[tokio::test]
async fn a_refused_callback_says_why() {
    let server = MockServer::start().await;
    let flow = config_for(&server)
        .authorization_code("http://127.0.0.1:9/callback")
        .build()
        .unwrap();
    let e = flow
        .complete(flow.authorize(), &Callback::new(CODE, "forged-state"))
        .await
        .unwrap_err();
    assert!(e.requires_reauthorization());
    check(&e, "sign-in failed: state does not match this sign-in");
}

#[tokio::test]
async fn a_failed_code_exchange_shows_its_cause_once() {
    let server =
        provider(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>")).await;
    let flow = config_for(&server)
        .authorization_code("http://127.0.0.1:9/callback")
        .build()
        .unwrap();
    let pending = flow.authorize();
    let state = state_of(pending.url());
    let e = flow
        .complete(pending, &Callback::new(CODE, state))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CodeExchange(_)), "{e:?}");
    let report = check(
        &e,
        "the authorization code exchange failed; start a new sign-in",
    );
    assert!(
        report.contains("HTTP 502"),
        "the cause is in the chain: {report}"
    );
    assert!(
        !report.contains("bad gateway"),
        "no response body: {report}"
    );
}

#[tokio::test]
async fn a_connection_failure_is_named_in_words_with_the_cause_in_the_chain() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config_at(format!(
        "http://127.0.0.1:{port}/token?secret={CLIENT_SECRET}"
    ))
    .build()
    .unwrap();
    let e = client_credentials_error(config).await;
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_retryable() && !e.is_configuration());
    let report = check(&e, "could not connect to the server");
    assert_eq!(e.to_string(), "could not connect to the server");
    assert!(chain(&e).len() > 1, "the cause is kept: {report}");
}

#[tokio::test]
async fn a_timeout_is_named_in_words() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let config = config_at(format!("http://127.0.0.1:{port}/token"))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = client_credentials_error(config).await;
    assert!(e.is_timeout(), "{e:?}");
    check(&e, "the HTTP request timed out");
    held.abort();
}

#[tokio::test]
async fn rate_limiting_says_how_long_to_wait() {
    let server = provider(
        json(429, serde_json::json!({"error": "slow_down"})).insert_header("retry-after", "30"),
    )
    .await;
    let e = client_credentials_error(config_for(&server)).await;
    assert!(e.is_rate_limited());
    // The provider's own code is part of it (issue 18 point 15).
    check(
        &e,
        "rate limited by the provider (HTTP 429): slow_down; retry after 30000ms",
    );
}

#[tokio::test]
async fn an_api_that_keeps_refusing_the_token_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(json(
            200,
            serde_json::json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            "Bearer error=\"invalid_token\", error_description=\"the token expired\"",
        ))
        .mount(&server)
        .await;
    let client = AuthedClient::builder(config_for(&server).client_credentials().build())
        .base_url(format!("{}/api/", server.uri()))
        .build()
        .unwrap();
    let e = client.get("me").send().await.unwrap_err();
    assert!(e.is_unauthorized());
    check(
        &e,
        "the API rejected the access token again after a refresh (invalid_token: the token expired)",
    );
}

#[test]
fn a_store_failure_keeps_the_stores_error_as_the_cause() {
    let e = Error::store(std::io::Error::other("disk full"));
    let report = check(&e, "the token store failed");
    assert_eq!(report, "the token store failed: disk full");
}

#[test]
fn a_configuration_error_says_what_to_fix() {
    let e = OAuthConfig::builder("not a url")
        .client_id("app")
        .build()
        .unwrap_err();
    assert!(e.is_configuration());
    check(&e, "configuration error: ");
}

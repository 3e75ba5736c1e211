//! The client credentials source and the shared cache, against real local HTTP servers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::testing::{ManualClock, TestProvider};
use authed::{ClientAuthMethod, ClientCredentials, Error, OAuthConfig, TokenSource};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn source(provider: &TestProvider, clock: &Arc<ManualClock>) -> ClientCredentials {
    OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .clock(clock.clone())
        .refresh_ahead(Duration::ZERO)
        .build()
        .unwrap()
        .client_credentials()
        .build()
}

fn wiremock_source(server: &MockServer) -> ClientCredentials {
    OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap()
        .client_credentials()
        .build()
}

#[tokio::test]
async fn token_is_reused_across_calls() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start_time());
    let source = source(&provider, &clock);
    let first = source.token().await.unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(60));
        let again = source.token().await.unwrap();
        assert_eq!(
            first.access_token(),
            again.access_token(),
            "the cached token is handed out"
        );
    }
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn token_is_refreshed_after_expiry() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start_time());
    let source = source(&provider, &clock);
    let first = source.token().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    let second = source.token().await.unwrap();
    assert_ne!(first.access_token(), second.access_token());
    assert_eq!(provider.token_requests(), 2);
}

#[tokio::test]
async fn expiry_margin_boundary_is_exact() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start_time());
    let source = source(&provider, &clock);
    let first = source.token().await.unwrap();
    // One-hour token, 60 s margin: usable until exactly 3540 s after it was requested.
    let until = start_time() + Duration::from_secs(3540);
    assert_eq!(
        first.expires_at(),
        Some(start_time() + Duration::from_secs(3600))
    );

    clock.set(until - Duration::from_nanos(1));
    let same = source.token().await.unwrap();
    assert_eq!(first.access_token(), same.access_token());
    assert_eq!(
        provider.token_requests(),
        1,
        "one nanosecond before the margin"
    );

    clock.set(until);
    let fresh = source.token().await.unwrap();
    assert_ne!(first.access_token(), fresh.access_token());
    assert_eq!(provider.token_requests(), 2, "exactly at the margin");
}

#[tokio::test]
async fn short_lived_tokens_are_not_expired_on_arrival() {
    let provider = TestProvider::start().await;
    provider.set_token_lifetime(Duration::from_secs(2));
    let clock = ManualClock::new(start_time());
    let source = source(&provider, &clock);
    source.token().await.unwrap();
    // A fixed 60 s (or Go's 10 s) margin would make this token expired on arrival.
    clock.advance(Duration::from_millis(1499));
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 1);
    clock.advance(Duration::from_millis(1));
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 2);
}

/// 100 tasks that ask `source` for a token at the same moment.
fn hundred_callers_at_once(
    source: &Arc<ClientCredentials>,
) -> Vec<tokio::task::JoinHandle<Result<Arc<authed::Token>, Error>>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    (0..100)
        .map(|_| {
            let (source, barrier) = (source.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                source.token().await
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_an_empty_cache_share_one_request() {
    let provider = TestProvider::start().await;
    provider.set_latency(Duration::from_millis(200));
    let source = Arc::new(source(&provider, &ManualClock::new(start_time())));
    let tasks = hundred_callers_at_once(&source);
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(provider.token_requests(), 1);
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_failure() {
    let provider = TestProvider::start().await;
    provider.set_latency(Duration::from_millis(200));
    provider.fail_with(
        503,
        "application/json",
        r#"{"error":"temporarily_unavailable","error_description":"maintenance"}"#,
    );
    let clock = ManualClock::new(start_time());
    let source = Arc::new(source(&provider, &clock));
    let tasks = hundred_callers_at_once(&source);
    for t in tasks {
        match t.await.unwrap() {
            Err(Error::OAuth(e)) => {
                assert_eq!(e.error, "temporarily_unavailable");
                assert_eq!(e.description.as_deref(), Some("maintenance"));
                assert_eq!(e.status, Some(503));
            }
            other => panic!("expected the shared OAuth error, got {other:?}"),
        }
    }
    // One flight for a hundred callers: the endpoint's three attempts, no more.
    assert_eq!(provider.token_requests(), 3);

    // During the backoff (1 s after a first failure) callers get the same error at once,
    // and nothing reaches the provider; after it, the next caller asks again and succeeds.
    provider.clear_failure();
    let e = source.token().await.unwrap_err();
    assert!(matches!(e, Error::OAuth(_)), "{e:?}");
    assert_eq!(provider.token_requests(), 3);
    clock.advance(Duration::from_secs(1));
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 4);
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let provider = TestProvider::start().await;
    let source = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let err = source.token().await.unwrap_err();
    assert!(err.is_invalid_client(), "{err:?}");
    let oauth = err.oauth_error().unwrap();
    assert_eq!(oauth.status, Some(401));
    assert_eq!(
        oauth.description.as_deref(),
        Some("client authentication failed")
    );
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_body() {
    let provider = TestProvider::start().await;
    let source = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .auth_method(ClientAuthMethod::ClientSecretPost)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn basic_auth_form_encodes_id_and_secret() {
    let server = MockServer::start().await;
    // base64("a%3Ab+c:s%40%25+t") for id "a:b c" and secret "s@% t" (RFC 6749 §2.3.1)
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", "Basic YSUzQWIrYzpzJTQwJTI1K3Q="))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=read+write"))
        .and(body_string_contains(
            "audience=https%3A%2F%2Fapi.example.com",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "t", "token_type": "bearer"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let source = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("a:b c")
        .client_secret("s@% t")
        .build()
        .unwrap()
        .client_credentials()
        .scopes(["read", "write"])
        .audience("https://api.example.com")
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
}

async fn token_error(status: u16, content_type: &str, body: &str) -> Error {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), content_type),
        )
        .mount(&server)
        .await;
    wiremock_source(&server).token().await.unwrap_err()
}

#[tokio::test]
async fn invalid_grant_is_revoked() {
    let err = token_error(
        400,
        "application/json",
        r#"{"error":"invalid_grant","error_description":"grant revoked"}"#,
    )
    .await;
    assert!(
        err.is_revoked() && err.requires_reauthorization(),
        "{err:?}"
    );
    assert!(
        matches!(&err, Error::TokenRevoked(e) if e.description.as_deref() == Some("grant revoked"))
    );
}

#[tokio::test]
async fn error_json_with_http_200_is_a_typed_error() {
    let err = token_error(
        200,
        "application/json",
        r#"{"error":"invalid_scope","error_description":"no such scope","error_uri":"https://docs.example.com/scopes"}"#,
    )
    .await;
    match err {
        Error::InvalidScope(e) => {
            assert_eq!(e.status, Some(200));
            assert_eq!(e.uri.as_deref(), Some("https://docs.example.com/scopes"));
        }
        other => panic!("expected InvalidScope, got {other:?}"),
    }
}

#[tokio::test]
async fn html_502_page_is_a_malformed_response_with_its_status() {
    let err = token_error(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1>secret-looking-body</body></html>",
    )
    .await;
    assert!(
        matches!(&err, Error::MalformedResponse { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        !err.to_string().contains("secret-looking-body"),
        "the body never reaches errors"
    );
}

#[tokio::test]
async fn body_over_the_cap_is_an_error() {
    let big = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(2 << 20));
    let err = token_error(200, "application/json", &big).await;
    assert!(
        matches!(&err, Error::MalformedResponse { status: 200, reason } if reason.contains("1 MiB")),
        "{err:?}"
    );
}

#[tokio::test]
async fn endless_chunked_body_is_cut_off_not_buffered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
        // Far more than the cap, without a Content-Length to reject early.
        for _ in 0..1024 {
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let source = OAuthConfig::builder(format!("http://{addr}/token"))
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let err = tokio::time::timeout(Duration::from_secs(10), source.token())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn token_endpoint_redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", "https://evil.example.com/token"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = wiremock_source(&server).token().await.unwrap_err();
    // Configuration: the message says so, with where the endpoint pointed.
    assert!(
        matches!(&err, Error::Config(m) if m.contains("HTTP 307 with a redirect to https://evil.example.com/token")),
        "{err:?}"
    );
    assert!(err.is_configuration() && !err.is_retryable());
}

/// Django (django-oauth-toolkit) answers a POST to its token URL without the trailing slash
/// with `301 Location: /o/token/`: the error names the URL to configure.
#[tokio::test]
async fn a_relative_redirect_names_the_url_to_configure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/o/token"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/o/token/?x=secret"))
        .expect(1)
        .mount(&server)
        .await;
    let err = OAuthConfig::builder(format!("{}/o/token", server.uri()))
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    let expected = format!("HTTP 301 with a redirect to {}/o/token/,", server.uri());
    assert!(
        matches!(&err, Error::Config(m) if m.contains(&expected) && !m.contains("x=secret")),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_are_typed_and_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let source = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("id")
        .client_secret("secret")
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let err = source.token().await.unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn plain_http_to_a_remote_token_endpoint_needs_the_danger_switch() {
    let err = OAuthConfig::builder("http://auth.example.com/token")
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    OAuthConfig::builder("http://auth.example.com/token")
        .client_id("id")
        .client_secret("secret")
        .danger_allow_insecure_http()
        .build()
        .unwrap();
}

#[tokio::test]
async fn different_scopes_never_share_a_token() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    let store: Arc<dyn authed::TokenStore> = Arc::new(authed::MemoryStore::new());
    let read = config
        .client_credentials()
        .scopes(["read"])
        .store(store.clone())
        .build();
    let write = config
        .client_credentials()
        .scopes(["write"])
        .store(store.clone())
        .build();
    assert_ne!(read.key(), write.key());
    let r = read.token().await.unwrap();
    let w = write.token().await.unwrap();
    assert_ne!(r.access_token(), w.access_token());
    assert_eq!(r.scopes(), Some(&["read".to_owned()][..]));
    assert_eq!(w.scopes(), Some(&["write".to_owned()][..]));
    assert_eq!(provider.token_requests(), 2);

    // A second source with the same configuration reuses the stored token.
    let read_again = config
        .client_credentials()
        .scopes(["read"])
        .store(store)
        .build();
    assert_eq!(
        read_again.token().await.unwrap().access_token(),
        r.access_token()
    );
    assert_eq!(provider.token_requests(), 2);
}

#[tokio::test]
async fn works_as_a_trait_object() {
    let provider = TestProvider::start().await;
    let source: Arc<dyn TokenSource> = Arc::new(source(&provider, &ManualClock::new(start_time())));
    let token = source.token().await.unwrap();
    let replaced = source.token_rejected(&token).await.unwrap();
    assert_ne!(token.access_token(), replaced.access_token());
    // Reporting the same rejected token again does not refresh twice.
    let again = source.token_rejected(&token).await.unwrap();
    assert_eq!(again.access_token(), replaced.access_token());
    assert_eq!(provider.token_requests(), 2);
}

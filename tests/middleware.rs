//! `authed::middleware::AuthMiddleware` in a `reqwest_middleware` chain, against real local
//! servers: composed with reqwest-retry in both orders (each retrying or refreshing exactly
//! what is theirs), with reqwest-tracing, the origin rule, and a body that cannot be replayed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authed::middleware::{AuthMiddleware, authed_error};
use authed::testing::TestProvider;
use authed::{ClientCredentials, Error, TokenSource};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn source(provider: &TestProvider) -> ClientCredentials {
    provider.config(None).client_credentials().build()
}

fn auth(source: impl TokenSource + 'static, origin: &str) -> AuthMiddleware {
    AuthMiddleware::builder(source)
        .allow_origin(origin)
        .build()
        .unwrap()
}

fn retry() -> RetryTransientMiddleware<ExponentialBackoff> {
    // Up to 3 retries, so that "exactly one" below is the server's doing, not the cap's. The
    // backoff is 1 ms: nothing asserts on time.
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(1))
        .build_with_max_retries(3);
    RetryTransientMiddleware::new_with_policy(policy)
}

/// An API that answers 503 once, then `401 invalid_token` once, then 200.
async fn flaky_then_rejecting_api() -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(3)
        .mount(&api)
        .await;
    api
}

async fn authorizations(api: &MockServer) -> Vec<String> {
    api.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect()
}

/// The 503 is retried once by reqwest-retry with the same token, the 401 refreshed once by
/// authed and sent once more with the new token: three requests, two token requests.
async fn assert_each_retried_exactly_once(
    client: ClientWithMiddleware,
    provider: &TestProvider,
    api: &MockServer,
) {
    let response = client
        .get(format!("{}/thing", api.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    let sent = authorizations(api).await;
    assert_eq!(sent.len(), 3, "503, 401, 200: one retry, one re-send");
    assert_eq!(provider.token_requests(), 2, "one refresh");
    assert_eq!(sent[0], sent[1], "the 503 retry carries the same token");
    assert_ne!(sent[1], sent[2], "the 401 re-send carries the fresh token");
    assert!(sent.iter().all(|a| a.starts_with("Bearer ")));
}

#[tokio::test]
async fn retry_outside_auth_retries_the_503_once_and_refreshes_the_401_once() {
    let provider = TestProvider::start().await;
    let api = flaky_then_rejecting_api().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(retry())
        .with(auth(source(&provider), &api.uri()))
        .build();
    assert_each_retried_exactly_once(client, &provider, &api).await;
}

#[tokio::test]
async fn auth_outside_retry_retries_the_503_once_and_refreshes_the_401_once() {
    let provider = TestProvider::start().await;
    let api = flaky_then_rejecting_api().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth(source(&provider), &api.uri()))
        .with(retry())
        .build();
    assert_each_retried_exactly_once(client, &provider, &api).await;
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn composes_with_reqwest_tracing_and_no_token_reaches_the_spans() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global, not `set_default`: a thread-local subscriber misses callsites whose interest
    // another test thread cached first, and the capture comes back empty. The only test here
    // that installs one; other tests' lines in the log carry none of this test's tokens.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let provider = TestProvider::start().await;
    let source = Arc::new(source(&provider));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(retry())
        .with(
            AuthMiddleware::builder(source.clone())
                .allow_origin(provider.api_url())
                .build()
                .unwrap(),
        )
        .build();
    let first = source.token().await.unwrap();
    client
        .get(format!("{}me", provider.api_url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    provider.revoke_access_tokens();
    let response = client
        .get(format!("{}me", provider.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(provider.token_requests(), 2, "one refresh");
    assert_eq!(provider.api_requests(), 3, "one re-send");
    let second = source.token().await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("HTTP request"),
        "reqwest-tracing's span is there: {log}"
    );
    assert!(log.contains("authed request"), "{log}");
    for token in [first, second] {
        assert!(
            !log.contains(token.access_token().secret()),
            "a token was logged"
        );
    }
}

#[tokio::test]
async fn a_request_to_another_origin_fails_before_it_is_sent() {
    let provider = TestProvider::start().await;
    let elsewhere = MockServer::start().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth(source(&provider), &provider.api_url()))
        .build();
    let err = client
        .get(format!("{}/steal", elsewhere.uri()))
        .send()
        .await
        .unwrap_err();
    match authed_error(&err) {
        Some(Error::UntrustedOrigin { origin }) => assert_eq!(origin, &elsewhere.uri()),
        other => panic!("expected UntrustedOrigin, got {other:?}"),
    }
    // Also reachable with anyhow, as documented.
    let reqwest_middleware::Error::Middleware(e) = &err else {
        panic!("not a middleware error")
    };
    assert!(e.downcast_ref::<Error>().unwrap().is_configuration());
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test]
async fn a_body_that_cannot_be_replayed_is_not_resent_but_the_rejection_is_reported() {
    let provider = TestProvider::start().await;
    let api = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .mount(&api)
        .await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth(source(&provider), &api.uri()))
        .build();
    let body = reqwest::Body::wrap(String::from("a stream that can only be read once"));
    let err = client
        .put(format!("{}/thing", api.uri()))
        .body(body)
        .send()
        .await
        .unwrap_err();
    match authed_error(&err) {
        Some(Error::Unauthorized(u)) => assert!(!u.retried && !u.replayable),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(api.received_requests().await.unwrap().len(), 1);
    assert_eq!(provider.token_requests(), 2, "the rejection was reported");
}

#[tokio::test]
async fn a_second_401_after_the_refresh_is_unauthorized_and_retried_is_true() {
    let provider = TestProvider::start().await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .mount(&api)
        .await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(retry())
        .with(auth(source(&provider), &api.uri()))
        .build();
    let err = client
        .get(format!("{}/thing", api.uri()))
        .send()
        .await
        .unwrap_err();
    // reqwest-retry outside wraps the error in its transparent `RetryError::Error`, which
    // hides it from a `source()` walk: unwrap that first (documented in authed::middleware).
    let reqwest_middleware::Error::Middleware(e) = &err else {
        panic!("not a middleware error: {err:?}")
    };
    let Some(reqwest_retry::RetryError::Error(inner)) = e.downcast_ref() else {
        panic!("reqwest-retry wraps it: {e:?}")
    };
    match authed_error(inner) {
        Some(Error::Unauthorized(u)) => assert!(u.retried),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        2,
        "never a third"
    );
    assert_eq!(provider.token_requests(), 2);
}

//! Token introspection (RFC 7662) against the in-process provider and, for answers no real
//! provider should send, a wiremock server.

use std::time::{Duration, SystemTime};

use authed::testing::TestProvider;
use authed::{Error, OAuthConfig, RetryPolicy, TokenSource};
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(provider: &TestProvider, secret: &str) -> OAuthConfig {
    OAuthConfig::builder(provider.token_url())
        .introspection_url(provider.introspection_url())
        .revocation_url(provider.revocation_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(secret)
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_active_token_is_described() {
    let provider = TestProvider::start().await;
    let config = config(&provider, TestProvider::CLIENT_SECRET);
    let token = config
        .client_credentials()
        .scopes(["reports:read", "reports:write"])
        .build()
        .token()
        .await
        .unwrap();
    let before = SystemTime::now() - Duration::from_secs(2);
    let info = config
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(info.is_active());
    assert!(info.is_active_at(SystemTime::now()));
    assert_eq!(info.scopes(), ["reports:read", "reports:write"]);
    assert_eq!(info.scope(), "reports:read reports:write");
    assert_eq!(info.client_id(), Some(TestProvider::CLIENT_ID));
    assert_eq!(info.token_type(), Some("Bearer"));
    assert_eq!(info.iss(), Some(provider.issuer().as_str()));
    let exp = info.expires_at().unwrap();
    assert!(exp > before + Duration::from_secs(3500), "{exp:?}");
    assert!(info.issued_at().unwrap() >= before);
    // Without a hint too.
    let info = config
        .introspect(token.access_token().secret())
        .await
        .unwrap();
    assert!(info.is_active());
}

#[tokio::test]
async fn unknown_revoked_and_expired_tokens_are_inactive_not_errors() {
    let provider = TestProvider::start().await;
    let config = config(&provider, TestProvider::CLIENT_SECRET);
    let info = config.introspect("no-such-token").await.unwrap();
    assert!(!info.is_active());
    assert!(info.client_id().is_none() && info.scopes().is_empty());

    let token = config.client_credentials().build().token().await.unwrap();
    config
        .revoke_access_token(token.access_token())
        .await
        .unwrap();
    let info = config
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(!info.is_active());

    // A token whose lifetime has run out.
    provider.set_token_lifetime(Duration::ZERO);
    let token = config.client_credentials().build().token().await.unwrap();
    let info = config
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(!info.is_active());
}

#[tokio::test]
async fn wrong_client_credentials_are_invalid_client() {
    let provider = TestProvider::start().await;
    let good = config(&provider, TestProvider::CLIENT_SECRET);
    let token = good.client_credentials().build().token().await.unwrap();
    let bad = config(&provider, "wrong-secret");
    let e = bad
        .introspect_access_token(token.access_token())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
    assert!(e.is_configuration());

    // A public client may not introspect either.
    let public = OAuthConfig::builder(provider.token_url())
        .introspection_url(provider.introspection_url())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .build()
        .unwrap();
    let e = public
        .introspect_access_token(token.access_token())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
}

#[tokio::test]
async fn discovery_reads_the_introspection_endpoint() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    assert_eq!(
        config
            .endpoints()
            .introspection_url
            .as_ref()
            .map(|u| u.as_str()),
        Some(provider.introspection_url().as_str())
    );
    let token = config.client_credentials().build().token().await.unwrap();
    assert!(
        config
            .introspect_access_token(token.access_token())
            .await
            .unwrap()
            .is_active()
    );
}

#[tokio::test]
async fn without_an_endpoint_it_is_a_configuration_error() {
    let config = OAuthConfig::builder("https://auth.example.com/token")
        .client_id("c")
        .build()
        .unwrap();
    let e = config.introspect("t").await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

async fn mock(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(response)
        .mount(server)
        .await;
}

fn mock_config(server: &MockServer, retry: RetryPolicy) -> OAuthConfig {
    OAuthConfig::builder(format!("{}/token", server.uri()))
        .introspection_url(format!("{}/introspect", server.uri()))
        .client_id("rs")
        .client_secret("rs-secret")
        .retry(retry)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_malformed_answer_is_a_typed_error() {
    for body in [
        serde_json::json!({"scope": "a"}),
        serde_json::json!({"active": "true"}),
        serde_json::json!({"active": 1}),
        serde_json::json!({"active": true, "exp": "tomorrow"}),
        serde_json::json!({"active": true, "aud": 7}),
    ] {
        let server = MockServer::start().await;
        mock(&server, ResponseTemplate::new(200).set_body_json(&body)).await;
        let e = mock_config(&server, RetryPolicy::none())
            .introspect("tok")
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::MalformedResponse { status: 200, .. }),
            "{body}: {e:?}"
        );
    }
    // Not JSON at all.
    let server = MockServer::start().await;
    mock(&server, ResponseTemplate::new(200).set_body_string("OK")).await;
    let e = mock_config(&server, RetryPolicy::none())
        .introspect("tok")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::MalformedResponse { .. }), "{e:?}");
}

/// RFC 7662 §2.3 answers bad credentials with 401 `invalid_client`; django-oauth-toolkit
/// answers a bare 403 with an empty `text/html` body (interop/README.md). Both are the
/// client's authentication failing; an error code the server did send is kept.
#[tokio::test]
async fn a_refusal_without_an_error_code_is_invalid_client() {
    for (status, content_type) in [(403, "text/html; charset=utf-8"), (401, "text/plain")] {
        let server = MockServer::start().await;
        mock(
            &server,
            ResponseTemplate::new(status).set_body_raw(Vec::new(), content_type),
        )
        .await;
        let e = mock_config(&server, RetryPolicy::none())
            .introspect("tok")
            .await
            .unwrap_err();
        let Error::InvalidClient(oauth) = &e else {
            panic!("{status}: expected InvalidClient, got {e:?}");
        };
        assert_eq!(oauth.status, Some(status));
        assert!(e.is_configuration() && !e.is_retryable());
    }
    let server = MockServer::start().await;
    mock(
        &server,
        ResponseTemplate::new(403).set_body_json(
            serde_json::json!({"error": "insufficient_scope", "error_description": "needs introspection"}),
        ),
    )
    .await;
    let e = mock_config(&server, RetryPolicy::none())
        .introspect("tok")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "insufficient_scope"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_request_is_authenticated_and_retried_after_a_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(header_exists("authorization"))
        .and(body_string_contains("token=tok"))
        .and(body_string_contains("token_type_hint=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "active": true, "sub": "user-7", "aud": ["api", "gw"], "cnf": {"x5t#S256": "abc"},
            "tenant": "acme",
        })))
        .mount(&server)
        .await;
    let retry = RetryPolicy::default().with_backoff(Duration::ZERO, Duration::ZERO);
    let info = mock_config(&server, retry)
        .introspect_refresh_token(&authed::RefreshToken::new("tok"))
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert_eq!(info.sub(), Some("user-7"));
    assert_eq!(info.aud(), ["api", "gw"]);
    assert_eq!(info.cnf().and_then(|c| c.x5t_s256()), Some("abc"));
    assert_eq!(info.extra()["tenant"], "acme");
}

#[tokio::test]
async fn the_token_is_in_no_debug_or_error() {
    let token = "sekrit-token-value-123";
    let server = MockServer::start().await;
    mock(
        &server,
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "active": true, "sub": "s", "echo": token,
        })),
    )
    .await;
    let config = mock_config(&server, RetryPolicy::none());
    let info = config.introspect(token).await.unwrap();
    let shown = format!("{info:?}");
    assert!(!shown.contains(token), "{shown}");
    assert!(
        shown.contains("echo"),
        "names of other members are shown: {shown}"
    );

    let server = MockServer::start().await;
    mock(
        &server,
        ResponseTemplate::new(401)
            .set_body_json(serde_json::json!({"error": "invalid_client", "token": token})),
    )
    .await;
    let e = mock_config(&server, RetryPolicy::none())
        .introspect(token)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)));
    for shown in [format!("{e:?}"), e.to_string()] {
        assert!(!shown.contains(token), "{shown}");
    }
}

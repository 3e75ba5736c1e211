//! Real providers break the token response rules in known ways. Each test models one
//! provider's behaviour with a local server and drives the public API: the quirk must be
//! normalised by the one token endpoint client, whatever grant asked.

use std::sync::Arc;
use std::time::Duration;

use authed::{AuthedClient, Error, OAuthConfig, Token, TokenSource};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Answers the one token request with `response` and returns what the client credentials
/// source made of it. The server checks on drop that exactly one request arrived, and that
/// it asked for JSON.
async fn token_from(response: ResponseTemplate) -> Result<Arc<Token>, Error> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("accept", "application/json"))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    let config = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("quirk-client")
        .client_secret("quirk-secret")
        // Each response is classified as sent: no second attempt.
        .retry(authed::RetryPolicy::none())
        .build()?;
    config.client_credentials().build().token().await
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn raw(status: u16, content_type: &str, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), content_type)
}

#[tokio::test]
async fn github_form_urlencoded_token_response_without_accept_json() {
    let token = token_from(raw(
        200,
        "application/x-www-form-urlencoded; charset=utf-8",
        "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
    ))
    .await
    .unwrap();
    assert_eq!(
        token.access_token().secret(),
        "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_at(), None);
}

#[tokio::test]
async fn github_comma_separated_scopes_are_split() {
    let token = token_from(json(
        200,
        serde_json::json!({"access_token": "gho_x", "token_type": "bearer", "scope": "repo,gist"}),
    ))
    .await
    .unwrap();
    assert_eq!(
        token.scopes(),
        Some(&["repo".to_owned(), "gist".to_owned()][..])
    );
}

#[tokio::test]
async fn github_error_in_http_200_is_a_typed_error() {
    let err = token_from(json(
        200,
        serde_json::json!({
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        }),
    ))
    .await
    .unwrap_err();
    let Error::TokenRevoked(oauth) = &err else {
        panic!("expected TokenRevoked, got {err:?}");
    };
    assert_eq!(oauth.error, "bad_verification_code");
    assert_eq!(oauth.status, Some(200));
    assert_eq!(
        oauth.description.as_deref(),
        Some("The code passed is incorrect or expired.")
    );
    assert!(err.requires_reauthorization());
}

#[tokio::test]
async fn github_form_encoded_error_in_http_200_is_a_typed_error() {
    let err = token_from(raw(
        200,
        "application/x-www-form-urlencoded",
        "error=incorrect_client_credentials&error_description=The+client_id+and%2For+client_secret+passed+are+incorrect.",
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidClient(o) if o.error == "incorrect_client_credentials"
        && o.description.as_deref() == Some("The client_id and/or client_secret passed are incorrect."))
    );
    assert!(err.is_configuration());
}

#[tokio::test]
async fn microsoft_v1_and_paypal_send_expires_in_as_a_string() {
    let token = token_from(json(
        200,
        serde_json::json!({
            "token_type": "Bearer",
            "expires_in": "3599",
            "ext_expires_in": "3599",
            "expires_on": "1700003599",
            "resource": "https://graph.microsoft.com",
            "access_token": "eyJ0eXAi"
        }),
    ))
    .await
    .unwrap();
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
    // Fields the crate does not know are kept, not dropped.
    assert_eq!(token.extra()["expires_on"], "1700003599");
}

#[tokio::test]
async fn salesforce_token_without_expires_in_is_cached_without_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(json(
            200,
            serde_json::json!({
                "access_token": "00Dxx0000001gPL!AR8AQJXg",
                "instance_url": "https://example.my.salesforce.com",
                "token_type": "Bearer",
                "issued_at": "1700000000000"
            }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let config = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap();
    let source = config.client_credentials().build();
    let first = source.token().await.unwrap();
    assert_eq!(first.expires_at(), None);
    // No expiry known: the token is used until an API rejects it, without another request.
    let second = source.token().await.unwrap();
    assert_eq!(first.access_token(), second.access_token());
}

#[tokio::test]
async fn token_response_without_token_type_is_bearer() {
    let token = token_from(json(
        200,
        serde_json::json!({"access_token": "t", "expires_in": 3600}),
    ))
    .await
    .unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn token_type_in_any_case_is_sent_as_bearer() {
    for token_type in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(json(
                200,
                serde_json::json!({"access_token": "tok", "token_type": token_type, "expires_in": 60}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        // The API accepts only the canonical scheme spelling.
        Mock::given(method("GET"))
            .and(path("/api/me"))
            .and(header("authorization", "Bearer tok"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let config = OAuthConfig::builder(format!("{}/token", server.uri()))
            .client_id("id")
            .client_secret("secret")
            .build()
            .unwrap();
        let client = AuthedClient::builder(config.client_credentials().build())
            .base_url(format!("{}/api/", server.uri()))
            .build()
            .unwrap();
        let response = client.get("me").send().await.unwrap();
        assert_eq!(response.status(), 200, "token_type {token_type}");
    }
}

#[tokio::test]
async fn http_201_created_token_response_is_success() {
    let token = token_from(json(
        201,
        serde_json::json!({"access_token": "created", "token_type": "bearer", "expires_in": 7200}),
    ))
    .await
    .unwrap();
    assert_eq!(token.access_token().secret(), "created");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(7200)));
}

#[tokio::test]
async fn facebook_legacy_expires_instead_of_expires_in() {
    let token = token_from(json(
        200,
        serde_json::json!({"access_token": "EAAB", "expires": 5183999}),
    ))
    .await
    .unwrap();
    assert_eq!(token.lifetime(), Some(Duration::from_secs(5183999)));
}

#[tokio::test]
async fn facebook_legacy_form_body_sent_as_text_plain() {
    let token = token_from(raw(
        200,
        "text/plain; charset=UTF-8",
        "access_token=EAAB&expires=5183999",
    ))
    .await
    .unwrap();
    assert_eq!(token.access_token().secret(), "EAAB");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(5183999)));
}

#[tokio::test]
async fn json_token_response_with_text_plain_content_type() {
    let token = token_from(raw(
        200,
        "text/plain",
        r#"{"access_token":"plain-json","token_type":"bearer","expires_in":"120"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(token.access_token().secret(), "plain-json");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(120)));
}

// Slack's oauth.v2.access: HTTP 200, `"ok": false`, and its own name for a spent or
// unknown code (https://api.slack.com/methods/oauth.v2.access): a dead grant.
#[tokio::test]
async fn slack_style_ok_false_error_in_http_200_is_a_dead_grant() {
    let err = token_from(json(
        200,
        serde_json::json!({"ok": false, "error": "invalid_code"}),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::TokenRevoked(o) if o.error == "invalid_code" && o.status == Some(200)),
        "{err:?}"
    );
}

#[tokio::test]
async fn proxy_html_error_page_is_malformed_and_retryable() {
    let err = token_from(raw(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::MalformedResponse { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    // The body is never echoed into the error.
    assert!(!err.to_string().contains("Bad Gateway"));
}

//! Real providers' answers: error bodies in every shape they send, dead grants under each
//! provider's own name, bodies whose `Content-Type` lies, odd `expires_in` values, and token
//! responses that must be refused (RFC 6749 §5.1, §7.1). Each local server answers the way
//! the named provider does; the source of each body is cited beside it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::ManualClock;
use authed::{
    AccessToken, AuthedClient, Error, MemoryStore, OAuthConfig, OAuthConfigBuilder, OAuthError,
    RefreshToken, Token, TokenSource, TokenStore,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "user-1";

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn raw(status: u16, content_type: &str, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), content_type)
}

/// A provider whose token endpoint answers every request with `response`.
async fn provider(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn requests_to(server: &MockServer, to: &str) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == to).count()
}

fn config_for(server: &MockServer) -> OAuthConfigBuilder {
    OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("app")
        .client_secret("app-secret")
}

/// A stored login whose access token has expired, so the next `token()` refreshes.
struct Login {
    store: Arc<MemoryStore>,
    source: authed::RefreshTokenSource,
}

async fn expired_login(config: OAuthConfig, refresh_token: &str) -> Login {
    let store = Arc::new(MemoryStore::new());
    let issued = SystemTime::now() - Duration::from_secs(7200);
    let token = Token::new(AccessToken::new("expired-access-token"))
        .with_lifetime(issued, Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(refresh_token)));
    let source = config
        .refresh_token_source()
        .store(store.clone())
        .key(KEY)
        .from_token(token)
        .await
        .unwrap();
    Login { store, source }
}

#[track_caller]
fn assert_provider_error(err: &Error, code: &str, description: &str, status: u16) {
    let oauth: &OAuthError = err
        .oauth_error()
        .unwrap_or_else(|| panic!("not a provider error: {err:?}"));
    assert_eq!(oauth.error, code);
    assert_eq!(oauth.description.as_deref(), Some(description));
    assert_eq!(oauth.status, Some(status));
}

/// The dead grant is reported as revoked, the stored login is gone, and the dead refresh
/// token is not sent again: a second `token()` makes no request.
async fn assert_dead_grant(
    server: &MockServer,
    login: &Login,
    code: &str,
    description: &str,
    status: u16,
) {
    let err = login.source.token().await.unwrap_err();
    assert!(
        matches!(err, Error::TokenRevoked(_)),
        "expected TokenRevoked, got {err:?}"
    );
    assert!(err.requires_reauthorization());
    assert_provider_error(&err, code, description, status);
    assert!(
        login.store.load(KEY).await.unwrap().is_none(),
        "login still stored"
    );
    assert_eq!(requests_to(server, "/token").await, 1);

    let again = login.source.token().await.unwrap_err();
    assert!(again.is_revoked(), "{again:?}");
    assert_eq!(
        requests_to(server, "/token").await,
        1,
        "the dead refresh token was sent again"
    );
}

// GitHub answers an expired, used or revoked refresh token with HTTP 200 and
// `bad_refresh_token`: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
// and https://github.com/orgs/community/discussions/24745 (the same body, seen in the wild).
#[tokio::test]
async fn github_bad_refresh_token_in_http_200_removes_the_login() {
    let server = provider(json(
        200,
        serde_json::json!({
            "error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
        }),
    ))
    .await;
    let login = expired_login(config_for(&server).build().unwrap(), "ghr_dead").await;
    assert_dead_grant(
        &server,
        &login,
        "bad_refresh_token",
        "The refresh token passed is incorrect or expired.",
        200,
    )
    .await;
}

// GitHub without `Accept: application/json` would send the same error form-encoded; here a
// form body labelled `application/json`, which the issue saw in the wild: the body decides.
#[tokio::test]
async fn github_form_encoded_bad_refresh_token_labelled_json() {
    let server = provider(raw(
        200,
        "application/json; charset=utf-8",
        "error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com",
    ))
    .await;
    let login = expired_login(config_for(&server).build().unwrap(), "ghr_dead").await;
    assert_dead_grant(
        &server,
        &login,
        "bad_refresh_token",
        "The refresh token passed is incorrect or expired.",
        200,
    )
    .await;
}

// Slack's oauth.v2.access answers HTTP 200 with `"ok": false` and its own codes:
// https://api.slack.com/methods/oauth.v2.access (errors `invalid_refresh_token`,
// `invalid_code`). Slack sends no description; the test adds Slack's `warning` field,
// which is not a description and must not become one.
#[tokio::test]
async fn slack_invalid_refresh_token_with_ok_false_removes_the_login() {
    let server = provider(json(
        200,
        serde_json::json!({"ok": false, "error": "invalid_refresh_token", "warning": "superfluous_charset"}),
    ))
    .await;
    let login = expired_login(config_for(&server).build().unwrap(), "xoxe-1-dead").await;
    let err = login.source.token().await.unwrap_err();
    let Error::TokenRevoked(oauth) = &err else {
        panic!("expected TokenRevoked, got {err:?}");
    };
    assert_eq!(oauth.error, "invalid_refresh_token");
    assert_eq!(oauth.description, None);
    assert_eq!(oauth.status, Some(200));
    assert!(login.store.load(KEY).await.unwrap().is_none());
    assert!(login.source.token().await.unwrap_err().is_revoked());
    assert_eq!(requests_to(&server, "/token").await, 1);
}

// Fitbit: an `errors` array with `errorType`, and `"success": false`, with HTTP 400:
// https://github.com/home-assistant/core/issues/141223 and
// https://github.com/aarondcoleman/Fitbit.NET/issues/320.
#[tokio::test]
async fn fitbit_errors_array_invalid_grant_removes_the_login() {
    let message = "Refresh token invalid: 1a2b3c. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process.";
    let server = provider(json(
        400,
        serde_json::json!({"errors": [{"errorType": "invalid_grant", "message": message}], "success": false}),
    ))
    .await;
    let login = expired_login(config_for(&server).build().unwrap(), "fitbit-dead").await;
    assert_dead_grant(&server, &login, "invalid_grant", message, 400).await;
}

// HubSpot's legacy `status` / `message` body, HTTP 400:
// https://github.com/HGData/mk-node-hubspot/issues/64 (`400 BAD_REFRESH_TOKEN`) and
// https://github.com/supaglue-labs/supaglue/pull/1935 ("missing or invalid refresh token").
#[tokio::test]
async fn hubspot_legacy_status_bad_refresh_token_removes_the_login() {
    let server = provider(json(
        400,
        serde_json::json!({
            "status": "BAD_REFRESH_TOKEN",
            "message": "missing or invalid refresh token",
            "correlationId": "6356f281-f9bb-4454-926e-516aaac0104f",
            "requestId": "cc696c9d-c967-47a8-9258-2dcdf39d729a"
        }),
    ))
    .await;
    let login = expired_login(config_for(&server).build().unwrap(), "hubspot-dead").await;
    assert_dead_grant(
        &server,
        &login,
        "BAD_REFRESH_TOKEN",
        "missing or invalid refresh token",
        400,
    )
    .await;
}

// Twitch's legacy body names only the HTTP status: `{"message": "Invalid refresh token",
// "status": 400}` (https://github.com/teekeks/pytwitchapi/issues/37). "400" is no dead-grant
// code anywhere else, so it is added for this provider only, the way a preset extends the
// table; without it the provider's code and description are still kept.
#[tokio::test]
async fn twitch_numeric_status_maps_through_the_configured_table() {
    let body = serde_json::json!({"message": "Invalid refresh token", "status": 400});

    let server = provider(json(400, body.clone())).await;
    let login = expired_login(config_for(&server).build().unwrap(), "twitch-dead").await;
    let err = login.source.token().await.unwrap_err();
    assert!(matches!(err, Error::OAuth(_)), "{err:?}");
    assert_provider_error(&err, "400", "Invalid refresh token", 400);
    assert!(
        login.store.load(KEY).await.unwrap().is_some(),
        "only a dead grant removes the login"
    );

    let server = provider(json(400, body)).await;
    let config = config_for(&server)
        .revoked_grant_errors(["400"])
        .build()
        .unwrap();
    let login = expired_login(config, "twitch-dead").await;
    assert_dead_grant(&server, &login, "400", "Invalid refresh token", 400).await;
}

// Facebook Graph sends `error` as an object (`message`, `type`, `code`, `fbtrace_id`):
// https://developers.facebook.com/docs/graph-api/guides/error-handling/.
// Reddit sends `error` as a number: `{"message": "Unauthorized", "error": 401}` for wrong
// client credentials (https://github.com/reddit-archive/reddit/wiki/OAuth2).
// Zoom adds `reason` to an RFC 6749 code: `{"reason": "Invalid Token!", "error":
// "invalid_request"}` (https://devforum.zoom.us, "Invalid Token!" on /oauth/token).
#[tokio::test]
async fn object_number_and_reason_errors_keep_the_providers_words() {
    let cases = [
        (
            json(
                400,
                serde_json::json!({"error": {
                    "message": "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
                    "type": "OAuthException", "code": 100, "error_subcode": 36008,
                    "fbtrace_id": "AbCdEfGh"}}),
            ),
            // Facebook's error `code` is the error; `type` is its class (issue 18 point 14).
            "100",
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            400,
        ),
        (
            json(
                401,
                serde_json::json!({"message": "Unauthorized", "error": 401}),
            ),
            "401",
            "Unauthorized",
            401,
        ),
        (
            json(
                400,
                serde_json::json!({"reason": "Invalid Token!", "error": "invalid_request"}),
            ),
            "invalid_request",
            "Invalid Token!",
            400,
        ),
    ];
    for (response, code, description, status) in cases {
        let server = provider(response).await;
        let source = config_for(&server)
            .build()
            .unwrap()
            .client_credentials()
            .build();
        let err = source.token().await.unwrap_err();
        assert!(matches!(err, Error::OAuth(_)), "{code}: {err:?}");
        assert_provider_error(&err, code, description, status);
        assert_eq!(requests_to(&server, "/token").await, 1);
    }
}

#[tokio::test]
async fn control_characters_in_provider_text_become_spaces() {
    let server = provider(json(
        400,
        serde_json::json!({"error": "invalid_request", "error_description": "line one\r\nline two\u{0}end"}),
    ))
    .await;
    let source = config_for(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let err = source.token().await.unwrap_err();
    assert_provider_error(&err, "invalid_request", "line one  line two end", 400);
}

// A proxy's HTML page labelled `application/json` (seen in the issue's fault matrix): the
// body decides, the error says what it was, and never quotes it.
#[tokio::test]
async fn html_labelled_json_is_malformed_and_says_so() {
    let server = provider(raw(
        502,
        "application/json",
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    ))
    .await;
    let source = config_for(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let err = source.token().await.unwrap_err();
    let Error::MalformedResponse { status, reason } = &err else {
        panic!("expected MalformedResponse, got {err:?}");
    };
    assert_eq!(*status, 502);
    assert!(reason.contains("HTML"), "{reason}");
    assert!(!err.to_string().contains("nginx"));
    assert!(err.is_retryable());
}

// A JSON token response labelled `application/x-www-form-urlencoded`.
#[tokio::test]
async fn json_labelled_as_a_form_is_read_as_json() {
    let server = provider(raw(
        200,
        "application/x-www-form-urlencoded",
        r#"{"access_token":"json-in-a-form","token_type":"bearer","expires_in":3600}"#,
    ))
    .await;
    let source = config_for(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "json-in-a-form");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
}

/// A client credentials source with a clock the test moves.
fn manual_source(server: &MockServer, clock: &Arc<ManualClock>) -> authed::ClientCredentials {
    config_for(server)
        .clock(clock.clone())
        .build()
        .unwrap()
        .client_credentials()
        .build()
}

#[tokio::test]
async fn negative_expires_in_keeps_the_token_as_already_expired() {
    let server = provider(json(
        200,
        serde_json::json!({"access_token": "stale-on-arrival", "token_type": "Bearer", "expires_in": -30}),
    ))
    .await;
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let source = manual_source(&server, &clock);
    let token = source.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "stale-on-arrival");
    assert_eq!(token.expires_at(), Some(authed::Clock::now(&*clock)));
    // Already expired: the next caller gets a new one.
    source.token().await.unwrap();
    assert_eq!(requests_to(&server, "/token").await, 2);
}

#[tokio::test]
async fn absurd_expires_in_saturates_and_the_token_is_cached() {
    for huge in [
        serde_json::json!(u64::MAX),
        serde_json::json!(1e300),
        serde_json::json!("99999999999999999999999"),
    ] {
        let server = provider(json(
            200,
            serde_json::json!({"access_token": "forever", "expires_in": huge}),
        ))
        .await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let source = manual_source(&server, &clock);
        let token = source.token().await.unwrap();
        assert_eq!(
            token.lifetime(),
            Some(Duration::from_secs(i32::MAX as u64)),
            "{huge}"
        );
        clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
        source.token().await.unwrap();
        assert_eq!(requests_to(&server, "/token").await, 1, "{huge}");
    }
}

/// A provider that answers the token request with `body`, and an API on another listener
/// that counts what reaches it.
async fn attack(body: serde_json::Value) -> (Error, Error, usize, usize) {
    let server = provider(json(200, body)).await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let source = config_for(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let client = AuthedClient::builder(source)
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    let err = client.get("me").send().await.unwrap_err();
    // Nothing was cached: a second call fails too (from the shared backoff, without a new
    // token request, issue 9.9).
    let again = client.get("me").send().await.unwrap_err();
    let api_requests = api.received_requests().await.unwrap_or_default().len();
    (
        err,
        again,
        requests_to(&server, "/token").await,
        api_requests,
    )
}

// RFC 6749 §7.1: a client must not use a token whose type it does not understand.
#[tokio::test]
async fn attack_unknown_token_type_is_never_sent_as_bearer() {
    for token_type in ["mac", "N_A", "DPoP", "bearer-ish"] {
        let (err, again, token_requests, api_requests) = attack(serde_json::json!({
            "access_token": "SlAV32hkKG", "token_type": token_type, "expires_in": 3600,
            "mac_key": "adijq39jdlaska9asud", "mac_algorithm": "hmac-sha-256"
        }))
        .await;
        assert!(
            matches!(&err, Error::UnsupportedTokenType { token_type: t } if t == token_type),
            "{token_type}: {err:?}"
        );
        assert!(err.is_configuration());
        assert!(
            matches!(again, Error::UnsupportedTokenType { .. }),
            "{token_type}: a refused token was cached: {again:?}"
        );
        assert_eq!(token_requests, 1, "{token_type}");
        assert_eq!(api_requests, 0, "{token_type}: the API was called");
    }
}

// An access token that is not a header value (RFC 6749 Appendix A.12: 1*VSCHAR) would split
// or forge headers, or fail on every call; it is refused at the token endpoint.
#[tokio::test]
async fn attack_access_token_with_cr_lf_is_refused_at_the_token_endpoint() {
    for access_token in [
        "abc\r\nX-Forwarded-For: 10.0.0.1",
        "abc\nHost: evil.example",
        "abc\u{0}def",
        "abc\u{7f}",
    ] {
        let (err, again, token_requests, api_requests) = attack(serde_json::json!({
            "access_token": access_token, "token_type": "Bearer", "expires_in": 3600
        }))
        .await;
        assert!(
            matches!(&err, Error::MalformedResponse { status: 200, reason } if reason.contains("header")),
            "{access_token:?}: {err:?}"
        );
        assert!(
            !err.to_string().contains("abc"),
            "the token is quoted: {err}"
        );
        assert!(
            matches!(again, Error::MalformedResponse { status: 200, .. }),
            "{access_token:?}: a refused token was cached: {again:?}"
        );
        assert_eq!(token_requests, 1, "{access_token:?}");
        assert_eq!(api_requests, 0, "{access_token:?}: the API was called");
    }
}

// Google's revocation endpoint answers a token that is already invalid with HTTP 400
// `invalid_token` (https://github.com/googleapis/google-auth-library-nodejs/issues/1175,
// https://github.com/customeros/customeros/pull/11611), and revoking a refresh token also
// revokes its access token, so the second revocation of a logout always gets that answer.
// RFC 7009 §2.2 counts invalid tokens as revoked: the logout succeeds quietly.
#[tokio::test]
async fn google_invalid_token_at_revocation_is_a_successful_logout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(json(
            400,
            serde_json::json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
        ))
        .mount(&server)
        .await;
    let config = config_for(&server)
        .revocation_url(format!("{}/revoke", server.uri()))
        .build()
        .unwrap();
    let login = expired_login(config, "1//0g-google-refresh").await;
    // An already invalid token counts as revoked (RFC 7009 §2.2).
    assert!(matches!(
        login.source.logout().await.unwrap(),
        authed::Logout::Revoked(_)
    ));
    assert!(login.store.load(KEY).await.unwrap().is_none());
    // The refresh token, then the access token.
    assert_eq!(requests_to(&server, "/revoke").await, 2);
    assert_eq!(requests_to(&server, "/token").await, 0);
}

// Other revocation errors still surface (the login is removed locally all the same).
#[tokio::test]
async fn other_revocation_errors_are_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(json(
            400,
            serde_json::json!({"error": "unsupported_token_type", "error_description": "revocation of access tokens is not supported"}),
        ))
        .mount(&server)
        .await;
    let config = config_for(&server)
        .revocation_url(format!("{}/revoke", server.uri()))
        .build()
        .unwrap();
    let login = expired_login(config, "rt").await;
    let err = login.source.logout().await.unwrap_err();
    assert_provider_error(
        &err,
        "unsupported_token_type",
        "revocation of access tokens is not supported",
        400,
    );
    assert!(login.store.load(KEY).await.unwrap().is_none());
    assert_eq!(requests_to(&server, "/revoke").await, 1);
}

// RFC 7009 §2.2: the body of a 200 is ignored; some revocation endpoints answer a bare `OK`
// or a small HTML page.
#[tokio::test]
async fn a_revocation_200_with_any_body_is_success() {
    for (content_type, body) in [
        ("text/plain", "OK"),
        ("text/html", "<html><body>revoked</body></html>"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/revoke"))
            .respond_with(raw(200, content_type, body))
            .mount(&server)
            .await;
        let config = config_for(&server)
            .revocation_url(format!("{}/revoke", server.uri()))
            .build()
            .unwrap();
        let login = expired_login(config, "rt").await;
        assert!(login.source.logout().await.unwrap().is_revoked());
        assert!(login.store.load(KEY).await.unwrap().is_none());
        assert_eq!(requests_to(&server, "/revoke").await, 2, "{body}");
    }
}

// Slack's oauth.v2.access names its bearer tokens `"token_type": "bot"` (or `"user"`):
// https://api.slack.com/methods/oauth.v2.access. They are bearer tokens; the name is kept.
#[tokio::test]
async fn slack_bot_token_type_is_sent_as_bearer() {
    let server = provider(json(
        200,
        serde_json::json!({
            "ok": true, "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "token_type": "bot", "scope": "commands,incoming-webhook", "bot_user_id": "U0KRQLJ9H",
            "app_id": "A0KRD7HC3", "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"}
        }),
    ))
    .await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&api)
        .await;
    let source = config_for(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    assert_eq!(source.token().await.unwrap().token_type(), "bot");
    let client = AuthedClient::builder(source)
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    assert_eq!(client.get("auth.test").send().await.unwrap().status(), 200);
}

//! Issue 18 points 14–16, played by real providers' answers (each cited beside its body): a
//! dead grant in every shape providers send is `TokenRevoked` and removes the login, through
//! the one table that presets extend; a rate limit in every shape is `RateLimited`, keeps the
//! login, honours the provider's reset time and carries the provider's own code and text;
//! revocation answers that mean "done" are a successful logout, and what the provider said is
//! visible to the caller. Each test counts the requests each endpoint saw.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::ManualClock;
use authed::{
    AccessToken, Error, MemoryStore, OAuthConfig, OAuthConfigBuilder, RefreshToken, Revoked, Token,
    TokenSource, TokenStore, providers,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "user-1";

/// 2027-01-15T08:00:00Z: the clock every configuration here reads.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

async fn server_answering(at: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn requests_to(server: &MockServer, to: &str) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == to).count()
}

/// `builder` pointed at `server`'s `/token` and `/revoke`, reading [`now`].
fn at(builder: OAuthConfigBuilder, server: &MockServer) -> OAuthConfig {
    builder
        .token_url(format!("{}/token", server.uri()))
        .revocation_url(format!("{}/revoke", server.uri()))
        .client_id("app")
        .client_secret("app-secret")
        .clock(ManualClock::new(now()))
        .retry(authed::RetryPolicy::none())
        .build()
        .unwrap()
}

/// A stored login whose access token has expired: the next `token()` refreshes.
struct Login {
    store: Arc<MemoryStore>,
    source: authed::RefreshTokenSource,
}

async fn expired_login(config: OAuthConfig) -> Login {
    let store = Arc::new(MemoryStore::new());
    let token = Token::new(AccessToken::new("expired-access-token"))
        .with_lifetime(now() - Duration::from_secs(7200), Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new("the-refresh-token")));
    let source = config
        .refresh_token_source()
        .store(store.clone())
        .key(KEY)
        .from_token(token)
        .await
        .unwrap();
    Login { store, source }
}

impl Login {
    async fn kept(&self) -> bool {
        self.store.load(KEY).await.unwrap().is_some()
    }
}

// ---- Point 14: dead grants in every shape ------------------------------------------------

/// A refresh answered with `response` through `builder` is a dead grant: `TokenRevoked` with
/// the provider's code, the login removed, and the dead refresh token never sent again.
async fn assert_dead_grant(builder: OAuthConfigBuilder, response: ResponseTemplate, code: &str) {
    let server = server_answering("/token", response).await;
    let login = expired_login(at(builder, &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(
        matches!(&e, Error::TokenRevoked(o) if o.error == code),
        "{code}: {e:?}"
    );
    assert!(
        !login.kept().await,
        "{code}: the dead login is still stored"
    );
    let again = login.source.token().await.unwrap_err();
    assert!(again.is_revoked(), "{again:?}");
    assert_eq!(
        requests_to(&server, "/token").await,
        1,
        "{code}: sent again"
    );
}

// Facebook: "190 — Invalid OAuth 2.0 Access Token" (error subcodes 458–467: expired, password
// changed, app removed, ...), https://developers.facebook.com/docs/graph-api/guides/error-handling/.
// Exchanging an expired token (`fb_exchange_token`) is answered so.
#[tokio::test]
async fn facebook_code_190_is_a_dead_grant() {
    let body = serde_json::json!({"error": {
        "message": "Error validating access token: Session has expired on Tuesday, 12-Jan-27 08:00:00 PST.",
        "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1b2C3d4"}});
    assert_dead_grant(OAuthConfig::builder("x"), json(400, body), "190").await;
}

// Strava's `Fault`: `{"message": ..., "errors": [{"resource", "field", "code"}]}`
// (https://developers.strava.com/docs/reference/#api-models-Fault); a revoked or used refresh
// token is the `RefreshToken` resource's `invalid`
// (https://developers.strava.com/docs/authentication/#refreshingexpiredaccesstokens).
#[tokio::test]
async fn strava_errors_array_for_the_refresh_token_is_a_dead_grant() {
    let body = serde_json::json!({"message": "Bad Request",
        "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}]});
    assert_dead_grant(OAuthConfig::builder("x"), json(400, body), "invalid").await;

    // The same code about another field is not a dead grant: the login stays.
    let body = serde_json::json!({"message": "Bad Request",
        "errors": [{"resource": "Application", "field": "client_id", "code": "invalid"}]});
    let server = server_answering("/token", json(400, body)).await;
    let login = expired_login(at(OAuthConfig::builder("x"), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "invalid"),
        "{e:?}"
    );
    assert!(login.kept().await);
}

// WeChat answers with HTTP 200 and a numeric `errcode`: 40030 "invalid refresh_token", 42002
// "refresh_token timeout", 40029 "invalid code", 40163 "code been used", 42003 "code timeout"
// (https://developers.weixin.qq.com/doc/oplatform/en/Return_codes/Return_code_descriptions_new.html).
#[tokio::test]
async fn wechat_numeric_codes_in_a_200_are_dead_grants() {
    for (code, text) in [
        (40030, "invalid refresh_token"),
        (42002, "refresh_token timeout"),
    ] {
        let body = serde_json::json!({"errcode": code, "errmsg": text});
        assert_dead_grant(
            OAuthConfig::builder("x"),
            json(200, body),
            &code.to_string(),
        )
        .await;
    }
}

// Twitch: "If the refresh token is no longer valid ... 400 Bad Request
// {"error": "Bad Request", "status": 400, "message": "Invalid refresh token"}"
// (https://dev.twitch.tv/docs/authentication/refresh-tokens/#handling-token-refresh-errors).
// "Bad Request" is no dead-grant code in general: the `twitch` preset adds this one, with
// its message.
#[tokio::test]
async fn twitch_400_invalid_refresh_token_is_a_dead_grant_through_its_preset() {
    let body = serde_json::json!({"error": "Bad Request", "status": 400,
        "message": "Invalid refresh token"});
    assert_dead_grant(providers::twitch(), json(400, body.clone()), "Bad Request").await;

    // Without the preset it is the provider's error, and the login stays.
    let server = server_answering("/token", json(400, body)).await;
    let login = expired_login(at(OAuthConfig::builder("x"), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "Bad Request"),
        "{e:?}"
    );
    assert!(login.kept().await);

    // Another 400 from Twitch, through the preset, is not a dead grant either.
    let other = serde_json::json!({"error": "Bad Request", "status": 400,
        "message": "missing client id"});
    let server = server_answering("/token", json(400, other)).await;
    let login = expired_login(at(providers::twitch(), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(matches!(e, Error::OAuth(_)), "{e:?}");
    assert!(login.kept().await);
}

// Reddit names the HTTP status as its error: `{"message": "Bad Request", "error": 400}` for a
// refresh token it no longer accepts (https://github.com/reddit-archive/reddit/wiki/OAuth2,
// "Refreshing the token"; the form is the one of its 401 for wrong client credentials,
// `{"message": "Unauthorized", "error": 401}`). The `reddit` preset adds `400`.
#[tokio::test]
async fn reddit_numeric_400_is_a_dead_grant_through_its_preset() {
    let body = serde_json::json!({"message": "Bad Request", "error": 400});
    assert_dead_grant(providers::reddit(), json(400, body), "400").await;

    // Reddit's 401 (wrong client credentials) is not a dead grant: the login stays.
    let body = serde_json::json!({"message": "Unauthorized", "error": 401});
    let server = server_answering("/token", json(401, body)).await;
    let login = expired_login(at(providers::reddit(), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(!e.is_revoked(), "{e:?}");
    assert!(login.kept().await);
}

// ---- Point 15: rate limits in every shape ----------------------------------------------

// Okta: 429 with `X-Rate-Limit-Reset`, "the time at which the rate limit resets, specified in
// UTC epoch time (in seconds)", and the body `E0000047`
// (https://developer.okta.com/docs/reference/rl-best-practices/,
// https://developer.okta.com/docs/reference/error-codes/#E0000047).
#[tokio::test]
async fn okta_x_rate_limit_reset_is_honoured_like_retry_after() {
    let reset = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 42;
    let server = server_answering(
        "/token",
        json(
            429,
            serde_json::json!({"errorCode": "E0000047",
                "errorSummary": "API call exceeded rate limit due to too many requests.",
                "errorLink": "E0000047", "errorId": "oaeXYZ", "errorCauses": []}),
        )
        .insert_header("x-rate-limit-limit", "600")
        .insert_header("x-rate-limit-remaining", "0")
        .insert_header("x-rate-limit-reset", reset.to_string().as_str()),
    )
    .await;
    let login = expired_login(at(OAuthConfig::builder("x"), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(42)),
        "{e:?}"
    );
    let o = e.oauth_error().expect("the provider's code and text");
    assert_eq!(o.error, "E0000047");
    assert_eq!(
        o.description.as_deref(),
        Some("API call exceeded rate limit due to too many requests.")
    );
    assert!(e.is_retryable() && !e.is_revoked());
    assert!(login.kept().await);
    // The endpoint is closed until the reset: the next call sends nothing.
    let again = login.source.token().await.unwrap_err();
    assert!(again.is_rate_limited(), "{again:?}");
    assert_eq!(requests_to(&server, "/token").await, 1);
}

// Discord: 429 with `Retry-After`, `X-RateLimit-Reset-After` and the body
// `{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}`
// (https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit).
// Reddit: `{"message": "Too Many Requests", "error": 429}` with `x-ratelimit-reset` in seconds
// from now (https://github.com/reddit-archive/reddit/wiki/API, "Rules").
#[tokio::test]
async fn discord_and_reddit_429_bodies_reach_the_error() {
    let cases = [
        (
            json(
                429,
                serde_json::json!({"message": "You are being rate limited.",
                    "retry_after": 64.57, "global": false}),
            )
            .insert_header("retry-after", "65")
            .insert_header("x-ratelimit-reset-after", "64.57"),
            "429",
            "You are being rate limited.",
            65,
        ),
        (
            json(
                429,
                serde_json::json!({"message": "Too Many Requests", "error": 429}),
            )
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", "17"),
            "429",
            "Too Many Requests",
            17,
        ),
    ];
    for (response, code, text, wait) in cases {
        let server = server_answering("/token", response).await;
        let login = expired_login(at(OAuthConfig::builder("x"), &server)).await;
        let e = login.source.token().await.unwrap_err();
        assert!(
            matches!(e, Error::RateLimited { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(wait)),
            "{e:?}"
        );
        let o = e.oauth_error().expect("the provider's code and text");
        assert_eq!(
            (o.error.as_str(), o.description.as_deref()),
            (code, Some(text))
        );
        assert!(e.to_string().contains(text), "{e}");
        assert!(login.kept().await);
        assert_eq!(requests_to(&server, "/token").await, 1);
    }
}

// Microsoft Entra throttles a user's refresh with `invalid_grant` and AADSTS50196 ("The server
// terminated an operation because it encountered a client request loop"), not a 429
// (https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/client-and-server-throttling,
// https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes#aadsts50196).
// The grant is alive: rate limited, retryable later, and the login is kept.
#[tokio::test]
async fn microsoft_request_loop_throttling_is_a_rate_limit_not_a_dead_grant() {
    let server = server_answering(
        "/token",
        json(
            400,
            serde_json::json!({"error": "invalid_grant",
                "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop. Please contact your app vendor. Trace ID: 0 Correlation ID: 1 Timestamp: 2027-01-15 08:00:00Z",
                "error_codes": [50196]}),
        ),
    )
    .await;
    let login = expired_login(at(providers::microsoft_entra("common"), &server)).await;
    let e = login.source.token().await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { status: 400, .. }), "{e:?}");
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("invalid_grant")
    );
    assert!(e.is_retryable() && !e.is_revoked() && !e.requires_reauthorization());
    assert!(login.kept().await, "a throttled login was removed");
    assert_eq!(requests_to(&server, "/token").await, 1);

    // Microsoft's 429 for client credentials: `Retry-After: 60` and a plain-text body.
    let server = server_answering(
        "/token",
        ResponseTemplate::new(429)
            .set_body_raw("Too Many Requests", "text/plain")
            .insert_header("retry-after", "60"),
    )
    .await;
    let e = at(providers::microsoft_entra("common"), &server)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(60)),
        "{e:?}"
    );
    assert_eq!(requests_to(&server, "/token").await, 1);
}

// ---- Point 16: revocation answers ----------------------------------------------------------

/// A revocation endpoint answering the refresh token with `for_refresh` and the access token
/// with `for_access`.
async fn revocation_server(
    for_refresh: ResponseTemplate,
    for_access: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(wiremock::matchers::body_string_contains(
            "token_type_hint=refresh_token",
        ))
        .respond_with(for_refresh)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(wiremock::matchers::body_string_contains(
            "token_type_hint=access_token",
        ))
        .respond_with(for_access)
        .mount(&server)
        .await;
    server
}

// Amazon Cognito's revocation endpoint revokes refresh tokens only; an access token is answered
// `400 {"error": "unsupported_token_type"}`, and "revoking a refresh token also revokes the
// access tokens" issued with it (https://docs.aws.amazon.com/cognito/latest/developerguide/revocation-endpoint.html).
// After the refresh token was revoked, that answer is a successful logout.
#[tokio::test]
async fn cognito_unsupported_token_type_after_the_refresh_token_is_a_successful_logout() {
    let server = revocation_server(
        ResponseTemplate::new(200),
        json(400, serde_json::json!({"error": "unsupported_token_type"})),
    )
    .await;
    let login = expired_login(at(OAuthConfig::builder("x"), &server)).await;
    let logout = login.source.logout().await.unwrap();
    let revocation = logout.revocation().expect("revoked at the provider");
    assert_eq!(revocation.refresh_token(), Some(&Revoked::Confirmed));
    assert!(
        matches!(revocation.access_token(), Some(Revoked::NotRevocable(o)) if o.error == "unsupported_token_type"),
        "{revocation:?}"
    );
    assert!(!login.kept().await);
    assert_eq!(requests_to(&server, "/revoke").await, 2);
    assert_eq!(requests_to(&server, "/token").await, 0);

    // Revoking only the access token that way revoked nothing: an error.
    let config = at(OAuthConfig::builder("x"), &server);
    let e = config
        .revoke_access_token(&AccessToken::new("at"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "unsupported_token_type"),
        "{e:?}"
    );
}

// Google answers a token that is already invalid with `400 {"error": "invalid_token",
// "error_description": "Token expired or revoked"}` ("If the revocation is successfully
// processed, then the HTTP status code of the response is 200. For error conditions, an HTTP
// status code 400 is returned along with an error code",
// https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke). RFC 7009 §2.2
// counts it as revoked, and the caller still sees what Google said.
#[tokio::test]
async fn googles_400_detail_is_visible_to_the_caller() {
    let google = json(
        400,
        serde_json::json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
    );
    let server = revocation_server(google.clone(), google).await;
    let login = expired_login(at(providers::google(), &server)).await;
    let logout = login.source.logout().await.unwrap();
    let revocation = logout.revocation().expect("revoked at the provider");
    for revoked in [revocation.refresh_token(), revocation.access_token()] {
        assert!(
            matches!(revoked, Some(Revoked::AlreadyInvalid(o))
                if o.error == "invalid_token"
                && o.description.as_deref() == Some("Token expired or revoked")
                && o.status == Some(400)),
            "{revocation:?}"
        );
    }
    assert!(!login.kept().await);
    assert_eq!(requests_to(&server, "/revoke").await, 2);

    // Google's other 400s are errors, with the detail.
    let server = revocation_server(
        json(
            400,
            serde_json::json!({"error": "invalid_request", "error_description": "Bad Request"}),
        ),
        ResponseTemplate::new(200),
    )
    .await;
    let login = expired_login(at(providers::google(), &server)).await;
    let e = login.source.logout().await.unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "invalid_request" && o.description.as_deref() == Some("Bad Request") && o.status == Some(400)),
        "{e:?}"
    );
    assert!(!login.kept().await, "removed locally all the same");
    assert_eq!(requests_to(&server, "/revoke").await, 1);
}

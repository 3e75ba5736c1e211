//! Issue 18 points 11–13 and 17, played by real providers' answers (each cited beside its
//! body): compressed answers, provider-specific `token_type` names, errors sent with HTTP 200,
//! GitHub's `slow_down`, Slack's nested user token and X's Basic-only client authentication.
//! Each test asserts the typed outcome and the requests each server saw.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::TestProvider;
use authed::{
    AccessToken, AuthedClient, Error, MemoryStore, OAuthConfig, OAuthConfigBuilder, RefreshToken,
    Token, TokenSource, TokenStore, providers,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &Default::default()).unwrap();
    out
}

/// `body` compressed with `encoding`, labelled so.
fn compressed(encoding: &str, body: &[u8], content_type: &str) -> ResponseTemplate {
    let bytes = match encoding {
        "gzip" => gzip(body),
        "deflate" => deflate(body),
        "br" => brotli(body),
        other => panic!("{other}"),
    };
    ResponseTemplate::new(200)
        .set_body_raw(bytes, content_type)
        .insert_header("content-encoding", encoding)
}

async fn requests_to(server: &MockServer, to: &str) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == to).count()
}

fn config_at(builder: OAuthConfigBuilder, server: &MockServer) -> OAuthConfig {
    builder
        .token_url(format!("{}/token", server.uri()))
        .client_id("app")
        .client_secret("app-secret")
        .retry(authed::RetryPolicy::none())
        .build()
        .unwrap()
}

// ---- Point 11: compressed answers ------------------------------------------------------

// Salesforce compresses REST answers when asked ("Compression ... Accept-Encoding: gzip",
// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest_compression.htm),
// and some of its gateways compress the token endpoint's answer too.
#[tokio::test]
async fn compressed_token_answers_are_decoded() {
    let body = serde_json::json!({
        "access_token": "00Dxx0000001gPL!AR8AQJXg",
        "instance_url": "https://example.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
        "token_type": "Bearer", "issued_at": "1800000000000",
        "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ="
    })
    .to_string();
    for encoding in ["gzip", "deflate", "br"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(compressed(encoding, body.as_bytes(), "application/json"))
            .mount(&server)
            .await;
        let token = config_at(OAuthConfig::builder("x"), &server)
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_or_else(|e| panic!("{encoding}: {e:?}"));
        assert_eq!(token.access_token().secret(), "00Dxx0000001gPL!AR8AQJXg");
        assert_eq!(
            token.extra()["instance_url"],
            "https://example.my.salesforce.com"
        );
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1, "{encoding}");
        let accepted = requests[0].headers["accept-encoding"].to_str().unwrap();
        assert!(accepted.contains(encoding), "{accepted}");
    }
}

// Discovery and JWKS documents come through the same reader: compressed metadata is
// discovered, and a compressed JWKS completes an OpenID Connect sign-in (the ID token is
// checked against the decoded keys).
#[tokio::test]
async fn compressed_discovery_and_jwks_are_decoded() {
    let provider = TestProvider::start().await;
    let jwks = reqwest::get(provider.jwks_url())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(compressed("gzip", &jwks, "application/json"))
        .mount(&cdn)
        .await;
    let metadata = serde_json::json!({
        "issuer": cdn.uri(),
        "token_endpoint": format!("{}/token", cdn.uri()),
        "jwks_uri": format!("{}/jwks", cdn.uri()),
    });
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(compressed(
            "br",
            metadata.to_string().as_bytes(),
            "application/json",
        ))
        .mount(&cdn)
        .await;
    let discovered = OAuthConfig::discover(&cdn.uri())
        .await
        .unwrap()
        .client_id("x")
        .build()
        .unwrap();
    assert_eq!(
        discovered.endpoints().token_url.as_str(),
        format!("{}/token", cdn.uri())
    );
    assert_eq!(
        requests_to(&cdn, "/.well-known/openid-configuration").await,
        1
    );

    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
        .jwks_url(format!("{}/jwks", cdn.uri()))
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    let flow = config
        .authorization_code("http://127.0.0.1:9/callback")
        .scopes(["openid"])
        .build()
        .unwrap();
    let pending = flow.authorize();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(pending.url())
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let login = flow.complete_url(pending, &location).await.unwrap();
    assert!(login.id_token_claims().is_some());
    assert_eq!(requests_to(&cdn, "/jwks").await, 1);
    assert_eq!(provider.token_requests(), 1);
}

// A decompression bomb: 16 MiB of JSON whitespace in a few KiB of gzip. The 1 MiB cap counts
// decoded bytes: refused, typed, one request, nothing near 16 MiB held.
#[tokio::test]
async fn a_compressed_answer_is_capped_after_decoding() {
    let mut bomb = b"{\"access_token\":\"x\"".to_vec();
    bomb.resize(16 << 20, b' ');
    bomb.push(b'}');
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(compressed("gzip", &bomb, "application/json"))
        .mount(&server)
        .await;
    let e = config_at(OAuthConfig::builder("x"), &server)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::MalformedResponse { status: 200, reason } if reason.contains("1 MiB")),
        "{e:?}"
    );
    assert_eq!(requests_to(&server, "/token").await, 1);
}

// ---- Point 12: provider-specific token_type names -------------------------------------

// eBay names its bearer tokens "User Access Token" and "Application Access Token"
// (https://developer.ebay.com/api-docs/static/oauth-client-credentials-grant.html,
// https://developer.ebay.com/api-docs/static/oauth-auth-code-grant-request.html); API calls
// send them as `Authorization: Bearer` (https://developer.ebay.com/api-docs/static/oauth-tokens.html).
#[tokio::test]
async fn ebay_token_types_are_accepted_by_name_and_sent_as_bearer() {
    let token = "v^1.1#i^1#p^1#r^0#I^3#f^0#t^H4sIAAAAAAAAAOVXa2wUVRTu";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": token, "expires_in": 7200,
            "token_type": "Application Access Token"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/buy/browse/v1/item_summary/search"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    // Without naming the type: refused, not sent anywhere, and the message says how to accept.
    let e = config_at(OAuthConfig::builder("x"), &server)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedTokenType { token_type } if token_type == "Application Access Token"),
        "{e:?}"
    );
    assert!(e.to_string().contains("bearer_token_types"), "{e}");

    // Named by the user, or by the eBay preset: accepted, and sent as Bearer.
    for builder in [
        OAuthConfig::builder("x").bearer_token_types(["Application Access Token"]),
        providers::ebay(),
    ] {
        let source = config_at(builder, &server).client_credentials().build();
        assert_eq!(
            source.token().await.unwrap().token_type(),
            "Application Access Token"
        );
        let client = AuthedClient::builder(source)
            .base_url(format!("{}/buy/browse/v1/", server.uri()))
            .build()
            .unwrap();
        let r = client.get("item_summary/search").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        requests_to(&server, "/buy/browse/v1/item_summary/search").await,
        2
    );
    assert_eq!(requests_to(&server, "/token").await, 3);
}

// ---- Point 13: errors in a 200 ----------------------------------------------------------

// WeChat answers every request with HTTP 200; an error is `{"errcode": ..., "errmsg": ...}`
// (https://developers.weixin.qq.com/doc/oplatform/en/Website_App/WeChat_Login/Wechat_Login.html,
// "Error example: {"errcode":40029,"errmsg":"invalid code"}"). `errcode` 0 means success.
#[tokio::test]
async fn wechat_errcode_in_a_200_is_the_providers_error() {
    for (body, want) in [
        (
            serde_json::json!({"errcode": 40013, "errmsg": "invalid appid"}),
            Some(("40013", "invalid appid")),
        ),
        (
            serde_json::json!({"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"}),
            Some((
                "45011",
                "api minute-quota reach limit  mustslower  retry next minute",
            )),
        ),
        (
            serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": "wx-token",
                "expires_in": 7200, "openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}),
            None,
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
            .mount(&server)
            .await;
        // A refresh of a stored login, answered so.
        let store = Arc::new(MemoryStore::new());
        let expired = Token::new(AccessToken::new("old"))
            .with_lifetime(
                SystemTime::now() - Duration::from_secs(7200),
                Duration::from_secs(3600),
            )
            .with_refresh_token(Some(RefreshToken::new("wx-refresh")));
        let login = config_at(OAuthConfig::builder("x"), &server)
            .refresh_token_source()
            .store(store.clone())
            .key("wx-user")
            .from_token(expired)
            .await
            .unwrap();
        let result = login.token().await;
        match want {
            Some((code, text)) => {
                let e = result.unwrap_err();
                assert!(matches!(e, Error::OAuth(_)), "{body}: {e:?}");
                let o = e.oauth_error().unwrap();
                assert_eq!(
                    (o.error.as_str(), o.description.as_deref()),
                    (code, Some(text))
                );
                assert_eq!(o.status, Some(200));
            }
            None => assert_eq!(result.unwrap().access_token().secret(), "wx-token"),
        }
        assert!(
            store.load("wx-user").await.unwrap().is_some(),
            "{body}: not a dead grant, the login stays"
        );
        assert_eq!(requests_to(&server, "/token").await, 1);
    }
}

// ---- Point 17: GitHub, Slack, X ------------------------------------------------------------

// GitHub answers a poll that comes too early with HTTP 200 `slow_down` and the new interval
// (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow).
// Waiting helps: retryable, with the interval it names.
#[tokio::test]
async fn github_slow_down_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "error": "slow_down",
            "error_description": "Too many requests have been made in the same timeframe.",
            "error_uri": "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow",
            "interval": 10})))
        .mount(&server)
        .await;
    let e = config_at(providers::github(), &server)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "slow_down"),
        "{e:?}"
    );
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        e.oauth_error().and_then(|o| o.interval()),
        Some(Duration::from_secs(10))
    );
    assert_eq!(e.kind(), "slow_down");
    assert_eq!(requests_to(&server, "/token").await, 1);
}

// Slack's oauth.v2.access puts the user token in `authed_user` (and, when only user scopes
// were asked for, has no top-level `access_token` at all)
// (https://api.slack.com/methods/oauth.v2.access, "Example response";
// https://api.slack.com/authentication/oauth-v2#exchanging).
#[tokio::test]
async fn slacks_nested_authed_user_token_can_be_read() {
    let both = serde_json::json!({
        "ok": true, "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "token_type": "bot", "scope": "commands,incoming-webhook", "bot_user_id": "U0KRQLJ9H",
        "app_id": "A0KRD7HC3", "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
        "enterprise": null, "is_enterprise_install": false,
        "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234",
            "token_type": "user"}});
    let user_only = serde_json::json!({
        "ok": true, "app_id": "A0KRD7HC3", "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
        "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-5678",
            "token_type": "user", "refresh_token": "xoxe-1-user", "expires_in": 43200}});
    for (body, top, user) in [
        (
            both,
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "xoxp-1234",
        ),
        (user_only, "xoxp-5678", "xoxp-5678"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let token = config_at(providers::slack(), &server)
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap();
        assert_eq!(token.access_token().secret(), top);
        let user_token = providers::slack_user_token(&token)
            .unwrap()
            .expect("the authed_user token");
        assert_eq!(user_token.access_token().secret(), user);
        assert_eq!(user_token.token_type(), "user");
        assert_eq!(requests_to(&server, "/token").await, 1);
    }
}

// X's token endpoint wants confidential clients to authenticate with HTTP Basic only; without
// it: `401 {"error": "unauthorized_client", "error_description": "Missing valid authorization
// header"}` (https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/user-access-token,
// "Confidential clients ... Basic Auth"; the body as seen in
// https://github.com/tweepy/tweepy/issues/2035). A configuration error, and the `x` preset
// sends Basic.
#[tokio::test]
async fn x_missing_basic_credentials_is_a_configuration_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", "Basic YXBwOmFwcC1zZWNyZXQ="))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_type": "bearer", "expires_in": 7200, "access_token": "x-token",
            "scope": "tweet.read users.read"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "unauthorized_client",
            "error_description": "Missing valid authorization header"})))
        .mount(&server)
        .await;
    let posted = config_at(
        OAuthConfig::builder("x").auth_method(authed::ClientAuthMethod::ClientSecretPost),
        &server,
    );
    let e = posted
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnauthorizedClient(_)), "{e:?}");
    assert!(
        e.is_configuration() && !e.is_retryable() && !e.is_revoked(),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("Missing valid authorization header"),
        "{e}"
    );
    assert_eq!(requests_to(&server, "/token").await, 1);

    // A user's refresh refused so is the application's fault, not the user's: kept.
    let store = Arc::new(MemoryStore::new());
    let expired = Token::new(AccessToken::new("old"))
        .with_lifetime(
            SystemTime::now() - Duration::from_secs(7200),
            Duration::from_secs(3600),
        )
        .with_refresh_token(Some(RefreshToken::new("x-refresh")));
    let login = posted
        .refresh_token_source()
        .store(store.clone())
        .key("x-user")
        .from_token(expired)
        .await
        .unwrap();
    let e = login.token().await.unwrap_err();
    assert!(matches!(e, Error::UnauthorizedClient(_)), "{e:?}");
    assert!(store.load("x-user").await.unwrap().is_some());
    assert_eq!(requests_to(&server, "/token").await, 2);

    let token = config_at(providers::x(), &server)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(token.access_token().secret(), "x-token");
    assert_eq!(requests_to(&server, "/token").await, 3);
}

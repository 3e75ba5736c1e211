//! Interop: every flow through `authed`'s public API against a real, OpenID-certified
//! authorization server (npm `oidc-provider`, configured by interop/server.mjs: PKCE required,
//! rotating refresh tokens with reuse detection, 2-second access tokens, client credentials,
//! device flow, introspection, revocation, a client whose id and secret contain `:`, `@`, `%`
//! and spaces, and a protected resource at /api/resource).
//!
//! Needs Node.js and `npm ci` in interop/; run `scripts/interop`, which does both. Built only
//! with the `interop` feature, so plain `cargo test` needs no Node.
//!
//! Each test starts its own server on 127.0.0.1 (a free port; the issuer is read from its
//! `READY issuer=...` line) and kills it on drop; the server also exits when our end of its
//! stdin closes, so a crashed test run leaves nothing behind.
//!
//! Expiry tests wait real time: the server's clock is the wall clock, and its tokens live
//! 2 seconds.

use std::process::{Child, ChildStdin, Command};
use std::sync::Arc;
use std::time::Duration;

use authed::{AuthedClient, ClientAuthMethod, Error, OAuthConfig, StaticToken, Token, TokenSource};
use serde_json::Value;

/// The confidential client with every character RFC 6749 §2.3.1 makes clients encode.
const SPECIAL_ID: &str = "authed-conf:id@x% y";
const SPECIAL_SECRET: &str = "s3cr:et@%20 pass";
const POST_ID: &str = "authed-post";
const POST_SECRET: &str = "post-secret";

#[path = "interop/common.rs"]
mod common;
use common::{Counting, resource, spawn_ready};

#[path = "interop/dpop.rs"]
mod dpop;

#[path = "interop/oidc.rs"]
mod oidc;

#[path = "interop/resources.rs"]
mod resources;

/// One oidc-provider process. Killed on drop.
struct Server {
    child: Child,
    issuer: String,
    // Held open: the server exits when it closes (EXIT_ON_STDIN_CLOSE=1).
    _stdin: ChildStdin,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "interop/node_modules is missing: run `npm ci` in interop/ (scripts/interop does)"
        );
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
        let mut command = Command::new(&node);
        command
            .arg("server.mjs")
            .current_dir(&dir)
            .envs(env.iter().copied());
        let (child, stdin, issuer) = spawn_ready(command, &format!("{node} interop/server.mjs"));
        Server {
            issuer,
            child,
            _stdin: stdin,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A configuration made by discovery, as users of a real provider would make it.
    async fn config(&self, id: &str, secret: Option<&str>) -> OAuthConfig {
        let builder = OAuthConfig::discover(&self.issuer)
            .await
            .unwrap()
            .client_id(id);
        match secret {
            Some(secret) => builder.client_secret(secret),
            None => builder,
        }
        .build()
        .unwrap()
    }

    /// A client for the protected resource.
    fn api(&self, source: Arc<dyn TokenSource>) -> AuthedClient {
        AuthedClient::builder(source)
            .base_url(self.url("/api/"))
            .build()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the resource server says about a token, asked without `authed`.
async fn raw_resource_status(server: &Server, token: &Token) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.url("/api/resource"))
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The server's count of token and JWKS requests.
async fn server_counts(server: &Server) -> serde_json::Value {
    reqwest::get(server.url("/test/counts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Revokes an access token through `authed`'s RFC 7009 support, as `authed-post`.
async fn revoke_as_post_client(server: &Server, token: &Token) {
    let config = server.config(POST_ID, Some(POST_SECRET)).await;
    config
        .revoke_access_token(token.access_token())
        .await
        .unwrap();
}

#[tokio::test]
async fn discovery_finds_every_endpoint_of_the_real_server() {
    let server = Server::start();
    let config = server.config(SPECIAL_ID, Some(SPECIAL_SECRET)).await;
    let e = config.endpoints();
    let url = |p: &str| Some(url::Url::parse(&server.url(p)).unwrap());
    assert_eq!(e.issuer.as_deref(), Some(server.url("").as_str()));
    assert!(
        e.iss_parameter_supported,
        "oidc-provider announces RFC 9207"
    );
    assert_eq!(e.jwks_url, url("/jwks"));
    assert_eq!(Some(e.token_url.clone()), url("/token"));
    assert_eq!(e.authorization_url, url("/auth"));
    assert_eq!(e.device_authorization_url, url("/device/auth"));
    assert_eq!(e.revocation_url, url("/token/revocation"));
    assert_eq!(e.introspection_url, url("/token/introspection"));
    // The server lists client_secret_basic: the RFC 6749 default is kept.
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
}

#[tokio::test]
async fn discovery_rejects_the_server_under_another_name() {
    let server = Server::start();
    // Same server, reached as `localhost`: its metadata names 127.0.0.1, so the issuer check
    // of RFC 8414 §3.3 must refuse it.
    let localhost = server.issuer.replace("127.0.0.1", "localhost");
    let err = OAuthConfig::discover(&localhost).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("names another issuer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_credentials_with_basic_auth_and_special_characters() {
    let server = Server::start();
    let config = server.config(SPECIAL_ID, Some(SPECIAL_SECRET)).await;
    let source = config.client_credentials().scopes(["api:read"]).build();
    let client = server.api(Arc::new(source));
    let body = resource(&client).await.unwrap();
    assert_eq!(body["client_id"], SPECIAL_ID);
    assert_eq!(body["kind"], "ClientCredentials");
    assert_eq!(body["scope"], "api:read");
}

#[tokio::test]
async fn client_credentials_with_post_auth() {
    let server = Server::start();
    let config = OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(POST_ID)
        .client_secret(POST_SECRET)
        .auth_method(ClientAuthMethod::ClientSecretPost)
        .build()
        .unwrap();
    let client = server.api(Arc::new(config.client_credentials().build()));
    let body = resource(&client).await.unwrap();
    assert_eq!(body["client_id"], POST_ID);
    assert_eq!(body["kind"], "ClientCredentials");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let server = Server::start();
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let (id, wrong) = match method {
            ClientAuthMethod::ClientSecretBasic => (SPECIAL_ID, "s3cr:et@%20 pass!"),
            _ => (POST_ID, "not-the-secret"),
        };
        let config = OAuthConfig::discover(&server.issuer)
            .await
            .unwrap()
            .client_id(id)
            .client_secret(wrong)
            .auth_method(method)
            .build()
            .unwrap();
        let err = config
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_err();
        let Error::InvalidClient(oauth) = &err else {
            panic!("{method:?}: expected InvalidClient, got {err:?}");
        };
        assert_eq!(oauth.status, Some(401), "{method:?}");
        assert!(err.is_configuration());
        assert!(
            !err.to_string().contains(wrong),
            "the secret leaked into {err}"
        );
    }
}

#[tokio::test]
async fn expired_token_is_replaced_before_the_api_sees_it() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "2")]);
    let config = server.config(SPECIAL_ID, Some(SPECIAL_SECRET)).await;
    let source = Counting::new(config.client_credentials().build());
    let client = server.api(source.clone());

    let first_token = source.token().await.unwrap();
    assert_eq!(first_token.lifetime(), Some(Duration::from_secs(2)));
    let first = resource(&client).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // The server has expired the first token...
    let (status, body) = raw_resource_status(&server, &first_token).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("access token expired"))
    );
    // ...and the client never presents it: the cache fetched a new one first.
    let second = resource(&client).await.unwrap();
    assert!(
        second["exp"].as_u64() > first["exp"].as_u64(),
        "{first} then {second}"
    );
    assert_ne!(
        source.token().await.unwrap().access_token(),
        first_token.access_token()
    );
    assert_eq!(source.rejected(), 0, "no 401 was needed");
}

#[tokio::test]
async fn revoked_token_is_replaced_after_exactly_one_rejection() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(POST_ID, Some(POST_SECRET)).await;
    let source = Counting::new(config.client_credentials().build());
    let client = server.api(source.clone());
    resource(&client).await.unwrap();
    let revoked = source.token().await.unwrap();

    revoke_as_post_client(&server, &revoked).await;
    let (status, body) = raw_resource_status(&server, &revoked).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("access token not found (unknown or revoked)"))
    );

    // One 401 invalid_token, one new token, one retry that succeeds.
    let body = resource(&client).await.unwrap();
    assert_eq!(body["client_id"], POST_ID);
    assert_eq!(source.rejected(), 1);
    assert_ne!(
        source.token().await.unwrap().access_token(),
        revoked.access_token()
    );
}

#[tokio::test]
async fn revoked_static_token_is_unauthorized_and_not_sent_again() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(POST_ID, Some(POST_SECRET)).await;
    let token = config.client_credentials().build().token().await.unwrap();
    revoke_as_post_client(&server, &token).await;

    // A source that cannot get another token: sending the same revoked token again cannot
    // help, so the 401 is final after one send, and says so.
    let source = Counting::new(StaticToken::from_token((*token).clone()));
    let client = server.api(source.clone());
    let err = client.get("resource").send().await.unwrap_err();
    let Error::Unauthorized(refused) = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert!(!refused.refreshable, "{refused:?}");
    assert!(!refused.retried, "{refused:?}");
    assert_eq!(refused.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        refused.description.as_deref(),
        Some("access token not found (unknown or revoked)")
    );
    assert_eq!(source.rejected(), 1, "the source was told once");
}

#[path = "interop/jwt.rs"]
mod jwt;

/// The user sign-in flows: authorization code + PKCE (headless, following the provider's
/// redirects with a cookie jar), refresh with rotation, reuse of a rotated refresh token,
/// device flow approved and denied, logout.
mod signin {
    use super::*;
    use authed::{AccessToken, Callback};

    const PUBLIC_ID: &str = "authed-public";
    pub(crate) const SCOPES: [&str; 3] = ["openid", "offline_access", "api:read"];

    /// Follows the provider's redirects, with cookies, until one points at `redirect_uri`;
    /// returns that URL (nothing has to listen there).
    pub(crate) async fn headless_login(authorize_url: &str, redirect_uri: &str) -> String {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut next = url::Url::parse(authorize_url).unwrap();
        for _ in 0..10 {
            let response = http.get(next.clone()).send().await.unwrap();
            let status = response.status();
            let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
                panic!(
                    "login stopped at HTTP {status}: {}",
                    response.text().await.unwrap()
                );
            };
            next = next.join(location.to_str().unwrap()).unwrap();
            if next.as_str().starts_with(redirect_uri) {
                return next.into();
            }
        }
        panic!("too many redirects");
    }

    /// Any port matches a native client's loopback redirect URI (RFC 8252 §7.3).
    pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:49152/callback";

    #[tokio::test]
    async fn authorization_code_with_pkce_then_refresh_rotation_and_reuse_detection() {
        let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "2")]);
        let config = server.config(SPECIAL_ID, Some(SPECIAL_SECRET)).await;
        let flow = config
            .authorization_code(REDIRECT_URI)
            .scopes(SCOPES)
            .build()
            .unwrap();
        let pending = flow.authorize();
        let callback = headless_login(pending.url(), REDIRECT_URI).await;
        assert!(
            callback.contains("iss="),
            "RFC 9207 iss is sent: {callback}"
        );
        let saved = serde_json::to_value(&pending).unwrap();
        let login = Arc::new(flow.complete_url(pending, &callback).await.unwrap());
        let first = login.current().unwrap();
        assert!(first.id_token().is_some());
        // The ID token passed validation against the server's real JWKS (RS256).
        let claims = login.id_token_claims().unwrap();
        assert_eq!(claims.sub(), "alice");
        assert_eq!(claims.get("aud"), Some(&serde_json::json!(SPECIAL_ID)));
        assert_eq!(
            claims.get("iss").and_then(|v| v.as_str()),
            Some(server.url("").as_str())
        );
        let counts = server_counts(&server).await;
        assert_eq!(
            (counts["token"].as_u64(), counts["jwks"].as_u64()),
            (Some(1), Some(1))
        );

        // A replayed completion (the session read twice): refused, no second token request.
        let replayed: authed::PendingAuthorization = serde_json::from_value(saved).unwrap();
        let err = flow.complete_url(replayed, &callback).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Callback(authed::CallbackError::AlreadyCompleted)
            ),
            "{err:?}"
        );
        assert_eq!(server_counts(&server).await["token"].as_u64(), Some(1));
        let first_refresh = first.refresh_token().unwrap().clone();

        let client = server.api(login.clone());
        let body = resource(&client).await.unwrap();
        assert_eq!(
            (body["sub"].as_str(), body["kind"].as_str()),
            (Some("alice"), Some("AccessToken"))
        );

        // Expiry -> refresh -> a rotated refresh token.
        tokio::time::sleep(Duration::from_millis(2300)).await;
        resource(&client).await.unwrap();
        let second = login.current().unwrap();
        assert_ne!(second.access_token(), first.access_token());
        assert_ne!(second.refresh_token().unwrap(), &first_refresh, "rotated");

        // Presenting the rotated-out refresh token again: reported as revoked...
        let replay = config
            .refresh_token_source()
            .from_token((*first).clone())
            .await
            .unwrap();
        let err = replay.token().await.unwrap_err();
        assert!(err.is_revoked(), "{err:?}");
        // ...and the server revoked the whole grant: the live login is dead too.
        let (status, _) = raw_resource_status(&server, &second).await;
        assert_eq!(status, 401);
        let err = client.get("resource").send().await.unwrap_err();
        assert!(err.is_revoked(), "{err:?}");
    }

    #[tokio::test]
    async fn authorization_callback_with_a_wrong_state_is_refused_before_the_exchange() {
        let server = Server::start();
        let config = server.config(PUBLIC_ID, None).await;
        let flow = config
            .authorization_code(REDIRECT_URI)
            .scopes(SCOPES)
            .build()
            .unwrap();
        let pending = flow.authorize();
        let callback = headless_login(pending.url(), REDIRECT_URI).await;
        let code = url::Url::parse(&callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let saved = serde_json::to_value(&pending).unwrap();
        let copy =
            || serde_json::from_value::<authed::PendingAuthorization>(saved.clone()).unwrap();
        let err = flow
            .complete(copy(), &Callback::new(code.clone(), "forged"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Callback(authed::CallbackError::StateMismatch)),
            "{err:?}"
        );
        // The code was not spent: the genuine callback still works.
        flow.complete_url(pending, &callback).await.unwrap();
        assert_eq!(server_counts(&server).await["token"].as_u64(), Some(1));
    }

    #[tokio::test]
    async fn a_callback_whose_iss_is_removed_is_refused_because_discovery_says_it_is_sent() {
        let server = Server::start();
        let config = server.config(PUBLIC_ID, None).await;
        assert!(config.endpoints().iss_parameter_supported);
        let flow = config
            .authorization_code(REDIRECT_URI)
            .scopes(SCOPES)
            .build()
            .unwrap();
        let pending = flow.authorize();
        let callback = headless_login(pending.url(), REDIRECT_URI).await;
        let mut stripped = url::Url::parse(&callback).unwrap();
        let kept: Vec<(String, String)> = stripped
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        stripped.query_pairs_mut().clear().extend_pairs(kept);
        let err = flow
            .complete_url(pending, stripped.as_str())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Callback(authed::CallbackError::MissingIssuer)),
            "{err:?}"
        );
        assert_eq!(server_counts(&server).await["token"].as_u64(), Some(0));
    }

    async fn approve_or_deny(server: &Server, action: &str, user_code: &str) {
        let response = reqwest::Client::new()
            .post(server.url(&format!("/test/device/{action}")))
            .form(&[("user_code", user_code)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn device_flow_approved() {
        let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
        let config = server.config(PUBLIC_ID, None).await;
        let flow = config
            .device_authorization()
            .scopes(SCOPES)
            .build()
            .unwrap();
        let code = flow.start().await.unwrap();
        // The server sends no interval: RFC 8628's 5 seconds apply.
        assert_eq!(code.interval(), Duration::from_secs(5));
        approve_or_deny(&server, "approve", code.user_code()).await;
        let login = flow.poll(&code).await.unwrap();
        let client = server.api(Arc::new(login));
        let body = resource(&client).await.unwrap();
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["client_id"], PUBLIC_ID);
    }

    #[tokio::test]
    async fn device_flow_denied() {
        let server = Server::start();
        let config = server.config(PUBLIC_ID, None).await;
        let flow = config
            .device_authorization()
            .scopes(SCOPES)
            .build()
            .unwrap();
        let code = flow.start().await.unwrap();
        approve_or_deny(&server, "deny", code.user_code()).await;
        let err = flow.poll(&code).await.unwrap_err();
        assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    }

    #[tokio::test]
    async fn logout_revokes_the_grant_at_the_server() {
        let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
        let config = server.config(SPECIAL_ID, Some(SPECIAL_SECRET)).await;
        let flow = config
            .authorization_code(REDIRECT_URI)
            .scopes(SCOPES)
            .build()
            .unwrap();
        let pending = flow.authorize();
        let callback = headless_login(pending.url(), REDIRECT_URI).await;
        let login = flow.complete_url(pending, &callback).await.unwrap();
        let token = login.token().await.unwrap();
        assert!(login.logout().await.unwrap().is_revoked());
        let (status, _) = raw_resource_status(&server, &token).await;
        assert_eq!(status, 401);
        // Revoking an unknown token is not an error (RFC 7009 §2.2).
        config
            .revoke_access_token(&AccessToken::new("never-issued"))
            .await
            .unwrap();
    }
}

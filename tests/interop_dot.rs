//! The second, independent authorization server: django-oauth-toolkit (PyPI, pinned in
//! interop/dot/requirements.txt), run by interop/dot/server.py with rotating refresh tokens,
//! PKCE required, OpenID Connect with an RSA key made at start, RFC 9700's recommendations
//! enforced, SQLite. Every flow it serves, through `authed`'s public API; how it differs from
//! oidc-provider is written in interop/README.md.
//!
//! Needs Python 3; run `scripts/interop dot` (or `scripts/interop` for both servers), which
//! makes the virtualenv interop/dot/.venv. Built only with the `interop` feature. Each test
//! starts its own server (about a second, from a template database) and kills it on drop;
//! it also exits when our end of its stdin closes.
//!
//! Expiry needs no waiting: the configurations here run on a clock the test moves, and DOT
//! refreshes an expired access token's login like a live one.

use std::process::{Child, ChildStdin, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use authed::{
    AccessToken, AuthedClient, ClientAuthMethod, Clock, Error, Logout, OAuthConfig, Token,
    TokenSource,
};
use serde_json::Value;

#[path = "interop/common.rs"]
mod common;
use common::{Counting, resource, spawn_ready};

const CONF_ID: &str = "authed-conf:id@x% y";
const CONF_SECRET: &str = "s3cr:et@%20 pass";
const PUBLIC_ID: &str = "authed-public";
const CC_ID: &str = "authed-cc";
const CC_SECRET: &str = "cc-secret";
const USER: &str = "alice";
const PASSWORD: &str = "alice-password";
/// Any port matches a loopback redirect URI with DOT's `ALLOW_LOCALHOST_LOOPBACK`.
const REDIRECT_URI: &str = "http://127.0.0.1:49153/callback";
const SCOPES: [&str; 2] = ["openid", "read"];

/// One django-oauth-toolkit process, with its own database. Killed on drop.
struct Dot {
    child: Child,
    /// `http://127.0.0.1:<port>/o`: DOT's issuer is where its URLs are mounted.
    issuer: String,
    _stdin: ChildStdin,
}

impl Dot {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Settings by environment (interop/dot/authed_dot/settings.py): `ACCESS_TOKEN_TTL`,
    /// `ROTATE_REFRESH_TOKEN`, `REFRESH_TOKEN_REUSE_PROTECTION`, `REFRESH_TOKEN_GRACE_PERIOD`.
    fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dot");
        let python = dir.join(".venv/bin/python");
        assert!(
            python.exists(),
            "interop/dot/.venv is missing: run scripts/interop, which makes it"
        );
        let mut command = Command::new(&python);
        command
            .arg("server.py")
            .current_dir(&dir)
            .env("DOT_TEMPLATE_DATABASE", dir.join(".venv/template.sqlite3"))
            .envs(env.iter().copied());
        let (child, stdin, issuer) = spawn_ready(command, "interop/dot/server.py");
        Dot {
            child,
            issuer,
            _stdin: stdin,
        }
    }

    fn origin(&self) -> &str {
        self.issuer.trim_end_matches("/o")
    }

    /// A URL on the server (`path` from its root, not the issuer's).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    async fn config(&self, id: &str, secret: Option<&str>) -> OAuthConfig {
        self.config_with(id, secret, |b| b).await
    }

    async fn config_with(
        &self,
        id: &str,
        secret: Option<&str>,
        more: impl FnOnce(authed::OAuthConfigBuilder) -> authed::OAuthConfigBuilder,
    ) -> OAuthConfig {
        let builder = OAuthConfig::discover(&self.issuer)
            .await
            .unwrap()
            .client_id(id);
        let builder = match secret {
            Some(secret) => builder.client_secret(secret),
            None => builder,
        };
        more(builder).build().unwrap()
    }

    fn api(&self, source: Arc<dyn TokenSource>) -> AuthedClient {
        AuthedClient::builder(source)
            .base_url(self.url("/api/"))
            .build()
            .unwrap()
    }

    /// Requests the server saw, by path.
    async fn count(&self, path: &str) -> u64 {
        let counts: Value = reqwest::get(self.url("/test/counts"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts[path].as_u64().unwrap_or(0)
    }

    /// What the resource says about `token`, asked without `authed`: the status only (DOT's
    /// refusals have no body).
    async fn resource_status(&self, token: &Token) -> u16 {
        reqwest::Client::new()
            .get(self.url("/api/resource"))
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Signs `alice` in through Django's own login form (CSRF token and session cookie, as a
    /// browser would) and follows the redirects until one points at `REDIRECT_URI`.
    async fn sign_in(&self, authorize_url: &str) -> String {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let location = |r: &reqwest::Response| {
            let value = r.headers().get(reqwest::header::LOCATION);
            let value = value.unwrap_or_else(|| panic!("no redirect: HTTP {}", r.status()));
            r.url().join(value.to_str().unwrap()).unwrap()
        };
        // Not signed in: DOT sends the browser to the login page with `next`.
        let to_login = location(&http.get(authorize_url).send().await.unwrap());
        assert_eq!(to_login.path(), "/accounts/login/", "{to_login}");
        let next = to_login
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let page = http.get(to_login.clone()).send().await.unwrap();
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"csrfmiddlewaretoken\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF token in the login form");
        let signed_in = http
            .post(to_login)
            .form(&[
                ("csrfmiddlewaretoken", csrf),
                ("username", USER),
                ("password", PASSWORD),
                ("next", &next),
            ])
            .send()
            .await
            .unwrap();
        let mut next = location(&signed_in);
        // Back to the authorization endpoint, which (skip_authorization) answers with the code.
        for _ in 0..5 {
            if next.as_str().starts_with(REDIRECT_URI) {
                return next.into();
            }
            next = location(&http.get(next).send().await.unwrap());
        }
        panic!("too many redirects");
    }

    /// A signed-in login of `alice` for `id`, through authorization code + PKCE.
    async fn login(&self, config: &OAuthConfig) -> authed::RefreshTokenSource {
        let flow = config
            .authorization_code(REDIRECT_URI)
            .scopes(SCOPES)
            .build()
            .unwrap();
        let pending = flow.authorize();
        let callback = self.sign_in(pending.url()).await;
        flow.complete_url(pending, &callback).await.unwrap()
    }
}

impl Drop for Dot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A clock the test moves: expiry without waiting (DOT does not refuse an expired access
/// token's refresh token).
#[derive(Debug)]
struct SteppedClock {
    added: AtomicU64,
}

impl SteppedClock {
    fn new() -> Arc<Self> {
        Arc::new(SteppedClock {
            added: AtomicU64::new(0),
        })
    }

    fn advance(&self, by: Duration) {
        self.added.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(self.added.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn discovery_reads_both_metadata_documents() {
    let server = Dot::start();
    let config = server.config(CONF_ID, Some(CONF_SECRET)).await;
    let e = config.endpoints();
    let url = |p: &str| Some(url::Url::parse(&server.url(p)).unwrap());
    assert_eq!(e.issuer.as_deref(), Some(server.issuer.as_str()));
    assert!(
        e.iss_parameter_supported,
        "both documents announce RFC 9207"
    );
    assert_eq!(Some(e.token_url.clone()), url("/o/token/"));
    assert_eq!(e.authorization_url, url("/o/authorize/"));
    assert_eq!(e.jwks_url, url("/o/.well-known/jwks.json"));
    // Only in the RFC 8414 document: DOT's OpenID document names neither.
    assert_eq!(e.revocation_url, url("/o/revoke_token/"));
    assert_eq!(e.introspection_url, url("/o/introspect/"));
    // DOT serves device authorization but announces no endpoint for it.
    assert_eq!(e.device_authorization_url, None);
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
    assert_eq!(
        (
            server.count("/o/.well-known/openid-configuration").await,
            server
                .count("/.well-known/oauth-authorization-server/o")
                .await
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn the_issuer_follows_the_host_the_server_is_asked_by() {
    // Unlike oidc-provider, DOT builds its issuer from the request's Host header (unless
    // OIDC_ISS_ENDPOINT is set): asked as `localhost`, it says it is `localhost`, so the
    // RFC 8414 §3.3 check passes and the endpoints follow.
    let server = Dot::start();
    let localhost = server.issuer.replace("127.0.0.1", "localhost");
    let config = OAuthConfig::discover(&localhost)
        .await
        .unwrap()
        .client_id(CC_ID)
        .client_secret(CC_SECRET)
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().issuer.as_deref(),
        Some(localhost.as_str())
    );
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{localhost}/token/")
    );
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_authentication() {
    let server = Dot::start();
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let config = server
            .config_with(CC_ID, Some(CC_SECRET), |b| b.auth_method(method))
            .await;
        let source = Counting::new(config.client_credentials().scopes(["read"]).build());
        let token = source.token().await.unwrap();
        // DOT's expires_in is ACCESS_TOKEN_EXPIRE_SECONDS, and it echoes the scope.
        assert_eq!(token.lifetime(), Some(Duration::from_secs(2)), "{method:?}");
        assert_eq!(token.scopes(), Some(&["read".to_owned()][..]));
        assert!(token.refresh_token().is_none());
        let body = resource(&server.api(source.clone())).await.unwrap();
        assert_eq!(
            (body["client_id"].as_str(), body["sub"].as_str()),
            (Some(CC_ID), None)
        );
    }
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let server = Dot::start();
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let config = server
            .config_with(CC_ID, Some("not-the-secret"), |b| b.auth_method(method))
            .await;
        let err = config
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_err();
        let Error::InvalidClient(oauth) = &err else {
            panic!("{method:?}: expected InvalidClient, got {err:?}");
        };
        // `{"error": "invalid_client"}`, no description, `WWW-Authenticate: Bearer`.
        assert_eq!(
            (oauth.status, oauth.description.as_deref()),
            (Some(401), None)
        );
        assert!(!err.to_string().contains("not-the-secret"));
    }
}

#[tokio::test]
async fn a_token_url_without_its_trailing_slash_is_reported_as_a_redirect() {
    let server = Dot::start();
    let config = OAuthConfig::builder(format!("{}/token", server.issuer))
        .client_id(CC_ID)
        .client_secret(CC_SECRET)
        .build()
        .unwrap();
    let err = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    // Django answers 301 to /o/token/; the credentials are not sent after it.
    assert!(err.is_configuration(), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("redirect") && text.contains("301") && text.contains("/o/token/"),
        "{text}"
    );
    assert_eq!(server.count("/o/token/").await, 0);
}

#[tokio::test]
async fn authorization_code_with_pkce_and_an_id_token_checked_against_the_jwks() {
    let server = Dot::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(CONF_ID, Some(CONF_SECRET)).await;
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .build()
        .unwrap();
    let pending = flow.authorize();
    let callback = server.sign_in(pending.url()).await;
    assert!(callback.contains("iss="), "RFC 9207 iss: {callback}");
    let login = Arc::new(flow.complete_url(pending, &callback).await.unwrap());
    let claims = login.id_token_claims().expect("validated ID token claims");
    // DOT's `sub` is the user's primary key, not the user name.
    assert_eq!(claims.sub(), "1");
    assert_eq!(claims.get("aud"), Some(&serde_json::json!(CONF_ID)));
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(server.issuer.as_str())
    );
    assert_eq!(server.count("/o/.well-known/jwks.json").await, 1);
    let token = login.current().unwrap();
    assert!(token.refresh_token().is_some());
    assert_eq!(
        token.scopes().map(<[String]>::to_vec),
        Some(vec!["openid".to_owned(), "read".to_owned()])
    );
    let body = resource(&server.api(login.clone())).await.unwrap();
    assert_eq!(
        (body["sub"].as_str(), body["client_id"].as_str()),
        (Some(USER), Some(CONF_ID))
    );
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_alone() {
    let server = Dot::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(PUBLIC_ID, None).await;
    assert_eq!(config.client_auth_method(), ClientAuthMethod::None);
    let login = server.login(&config).await;
    let body = resource(&server.api(Arc::new(login))).await.unwrap();
    assert_eq!(
        (body["sub"].as_str(), body["client_id"].as_str()),
        (Some(USER), Some(PUBLIC_ID))
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_family() {
    let server = Dot::start_with(&[("REFRESH_TOKEN_REUSE_PROTECTION", "1")]);
    let clock = SteppedClock::new();
    let config = server
        .config_with(CONF_ID, Some(CONF_SECRET), |b| b.clock(clock.clone()))
        .await;
    let login = Arc::new(server.login(&config).await);
    let first = login.current().unwrap();
    let client = server.api(login.clone());
    resource(&client).await.unwrap();

    // Expired by our clock: the next call refreshes, and DOT rotates the refresh token.
    clock.advance(Duration::from_secs(3));
    resource(&client).await.unwrap();
    let second = login.current().unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_ne!(second.refresh_token(), first.refresh_token(), "rotated");
    // DOT sends a new ID token with every refresh of an openid login.
    assert!(second.id_token().is_some());
    assert_eq!(server.count("/o/token/").await, 2);

    // The rotated-out refresh token, presented again: revoked...
    let replay = config
        .refresh_token_source()
        .from_token((*first).clone())
        .await
        .unwrap();
    let err = replay.token().await.unwrap_err();
    assert!(err.is_revoked(), "{err:?}");
    // ...and with REFRESH_TOKEN_REUSE_PROTECTION the whole family is: the live login too.
    assert_eq!(server.resource_status(&second).await, 401);
    clock.advance(Duration::from_secs(3));
    let err = login.token().await.unwrap_err();
    assert!(err.is_revoked(), "{err:?}");
}

#[tokio::test]
async fn within_the_grace_period_a_reused_refresh_token_gets_the_same_answer() {
    let server = Dot::start_with(&[
        ("REFRESH_TOKEN_REUSE_PROTECTION", "1"),
        ("REFRESH_TOKEN_GRACE_PERIOD", "120"),
        // DOT answers 500 here with hashed token storage (see the next test).
        ("HASHED_TOKENS", "0"),
    ]);
    let clock = SteppedClock::new();
    let config = server
        .config_with(CONF_ID, Some(CONF_SECRET), |b| b.clock(clock.clone()))
        .await;
    let login = server.login(&config).await;
    let first = login.current().unwrap();
    clock.advance(Duration::from_secs(3));
    let second = login.token().await.unwrap();
    assert_ne!(second.refresh_token(), first.refresh_token());

    // A client that lost the answer and asks again within the grace period: DOT answers
    // with the pair it already issued, and revokes nothing.
    let retry = config
        .refresh_token_source()
        .from_token((*first).clone())
        .await
        .unwrap();
    let again = retry.token().await.unwrap();
    assert_eq!(again.refresh_token(), second.refresh_token());
    assert_eq!(again.access_token(), second.access_token());
    assert_eq!(server.resource_status(&second).await, 200);
}

#[tokio::test]
async fn with_hashed_tokens_a_grace_period_refresh_fails_and_the_login_is_kept() {
    // DOT 3.4.1 with COMPLIANT_BCP_RFC9700_TOKEN_STORAGE looks the re-issued access token up
    // by the checksum of its stored hash, finds nothing and answers 500 (an HTML page).
    let server = Dot::start_with(&[
        ("REFRESH_TOKEN_REUSE_PROTECTION", "1"),
        ("REFRESH_TOKEN_GRACE_PERIOD", "120"),
    ]);
    let clock = SteppedClock::new();
    let config = server
        .config_with(CONF_ID, Some(CONF_SECRET), |b| b.clock(clock.clone()))
        .await;
    let login = server.login(&config).await;
    let first = login.current().unwrap();
    clock.advance(Duration::from_secs(3));
    let second = login.token().await.unwrap();
    let retry = config
        .refresh_token_source()
        .from_token((*first).clone())
        .await
        .unwrap();
    let err = retry.token().await.unwrap_err();
    assert!(
        matches!(err, Error::MalformedResponse { status: 500, .. }) && err.is_retryable(),
        "{err:?}"
    );
    // Nothing was revoked: the newest login still works.
    assert_eq!(server.resource_status(&second).await, 200);
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_kept() {
    let server = Dot::start_with(&[("ROTATE_REFRESH_TOKEN", "0")]);
    let clock = SteppedClock::new();
    let config = server
        .config_with(CONF_ID, Some(CONF_SECRET), |b| b.clock(clock.clone()))
        .await;
    let login = server.login(&config).await;
    let first = login.current().unwrap();
    clock.advance(Duration::from_secs(3));
    let second = login.token().await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_eq!(second.refresh_token(), first.refresh_token());
    assert_eq!(server.resource_status(&second).await, 200);
}

#[tokio::test]
async fn introspection_of_a_live_and_a_revoked_token() {
    let server = Dot::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let user = server.config(CONF_ID, Some(CONF_SECRET)).await;
    let login = server.login(&user).await;
    let token = login.token().await.unwrap();
    // A resource server is a client too: the client-credentials application asks.
    let gateway = server.config(CC_ID, Some(CC_SECRET)).await;
    let info = gateway
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(info.is_active());
    assert_eq!(
        (info.client_id(), info.username()),
        (Some(CONF_ID), Some(USER))
    );
    assert!(info.has_scope("openid") && info.has_scope("read"));
    assert!(info.expires_at().is_some());
    user.revoke_access_token(token.access_token())
        .await
        .unwrap();
    let info = gateway
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(!info.is_active());
}

#[tokio::test]
async fn introspection_with_wrong_credentials_is_invalid_client() {
    let server = Dot::start();
    let gateway = server.config(CC_ID, Some("not-the-secret")).await;
    let err = gateway.introspect("anything").await.unwrap_err();
    // DOT answers a bare 403 with an empty body.
    let Error::InvalidClient(oauth) = &err else {
        panic!("expected InvalidClient, got {err:?}");
    };
    assert_eq!(oauth.status, Some(403));
    assert!(err.is_configuration() && !err.is_retryable());
}

#[tokio::test]
async fn an_expired_token_is_replaced_and_a_revoked_one_after_one_401() {
    let server = Dot::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(CC_ID, Some(CC_SECRET)).await;
    let source = Counting::new(config.client_credentials().build());
    let client = server.api(source.clone());
    resource(&client).await.unwrap();
    let revoked = source.token().await.unwrap();
    config
        .revoke_access_token(revoked.access_token())
        .await
        .unwrap();
    assert_eq!(server.resource_status(&revoked).await, 401);
    // DOT's 401 carries `WWW-Authenticate: Bearer error="invalid_token"` and no body: one
    // rejection, one new token, one retry that succeeds.
    resource(&client).await.unwrap();
    assert_eq!(source.rejected(), 1);
    assert_eq!(server.count("/o/token/").await, 2);
}

#[tokio::test]
async fn logout_revokes_the_login_at_the_server() {
    let server = Dot::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(CONF_ID, Some(CONF_SECRET)).await;
    // Discovery found the revocation endpoint (in the RFC 8414 document only), so a flow
    // that requires one builds.
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .require_revocation()
        .build()
        .unwrap();
    let pending = flow.authorize();
    let callback = server.sign_in(pending.url()).await;
    let login = flow.complete_url(pending, &callback).await.unwrap();
    let token = login.token().await.unwrap();
    assert!(matches!(login.logout().await.unwrap(), Logout::Revoked(_)));
    assert_eq!(
        server.count("/o/revoke_token/").await,
        2,
        "refresh and access"
    );
    assert_eq!(server.resource_status(&token).await, 401);
    // The refresh token is dead too.
    let again = config
        .refresh_token_source()
        .from_token(
            Token::new(AccessToken::new("expired"))
                .with_expires_at(Some(SystemTime::UNIX_EPOCH))
                .with_refresh_token(token.refresh_token().cloned()),
        )
        .await
        .unwrap();
    assert!(again.token().await.unwrap_err().is_revoked());
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    config
        .revoke_access_token(&AccessToken::new("never-issued"))
        .await
        .unwrap();
}

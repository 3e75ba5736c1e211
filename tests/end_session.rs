//! OpenID Connect RP-Initiated Logout 1.0 with revocation, against the in-process provider,
//! whose end-session endpoint checks the hint, the client and the registered redirect.

use std::sync::Arc;

use authed::testing::TestProvider;
use authed::{EndSession, Error, MemoryStore, OAuthConfig, RefreshTokenSource, TokenStore};
use url::Url;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";

async fn sign_in(
    provider: &TestProvider,
    config: &OAuthConfig,
    store: Arc<dyn TokenStore>,
) -> RefreshTokenSource {
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .store(store)
        .key("user")
        .build()
        .unwrap();
    let pending = flow.authorize();
    let callback = provider.approve(pending.url()).await;
    flow.complete_url(pending, &callback).await.unwrap()
}

/// Follows the logout URL as the browser would: where the provider sends it back to.
async fn browse(url: &str) -> (u16, Option<String>) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn the_logout_url_carries_the_hint_client_redirect_and_state_and_the_provider_accepts_it() {
    let provider = TestProvider::start().await;
    provider.set_post_logout_redirect_uris(&[SIGNED_OUT]);
    let config = provider.config(None);
    let login = sign_in(&provider, &config, Arc::new(MemoryStore::new())).await;
    let id_token = login
        .current()
        .unwrap()
        .id_token()
        .unwrap()
        .secret()
        .to_owned();

    let end = login
        .end_session()
        .post_logout_redirect_uri(SIGNED_OUT)
        .logout_hint("user-1")
        .ui_locales("fr en")
        .build()
        .unwrap();
    assert!(end.url().starts_with(&provider.end_session_url()));
    let state = end.state().unwrap().to_owned();
    assert!(state.len() >= 20, "a random state");
    let params = query(end.url());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("id_token_hint"), Some(id_token.as_str()));
    assert_eq!(get("client_id"), Some(TestProvider::CLIENT_ID));
    assert_eq!(get("post_logout_redirect_uri"), Some(SIGNED_OUT));
    assert_eq!(get("state"), Some(state.as_str()));
    assert_eq!(get("logout_hint"), Some("user-1"));
    assert_eq!(get("ui_locales"), Some("fr en"));
    // Building the URL revokes nothing and keeps the login.
    assert!(provider.revocations().is_empty());
    assert!(login.current().is_some());

    let (status, back) = browse(end.url()).await;
    assert_eq!(status, 302);
    let back = back.unwrap();
    assert!(end.is_callback(&back), "{back}");
    assert!(!end.is_callback(&format!("{SIGNED_OUT}?state=forged")));
    assert!(
        !end.is_callback(&format!("{back}&state={state}")),
        "a repeated state"
    );
    assert!(!end.is_callback(&back.replace("app.example.com", "evil.example")));
    assert_eq!(provider.end_session_requests().len(), 1);

    // A copy kept in a session store works the same, and shows neither URL nor state.
    let kept: EndSession = serde_json::from_str(&serde_json::to_string(&end).unwrap()).unwrap();
    assert!(kept.is_callback(&back));
    let shown = format!("{kept:?}");
    assert!(
        !shown.contains(&state) && !shown.contains(&id_token),
        "{shown}"
    );

    // The provider refuses what is not registered, and a client that is not the hint's.
    let unregistered = login
        .end_session()
        .post_logout_redirect_uri("https://app.example.com/elsewhere")
        .build()
        .unwrap();
    assert_eq!(browse(unregistered.url()).await.0, 400);
}

#[tokio::test]
async fn sign_out_revokes_and_forgets_the_login_and_gives_the_url_that_ends_the_session() {
    let provider = TestProvider::start().await;
    provider.set_post_logout_redirect_uris(&[SIGNED_OUT]);
    let config = provider.config(None);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let login = sign_in(&provider, &config, store.clone()).await;
    let token = login.current().unwrap();
    let refresh_token = token.refresh_token().unwrap().secret().to_owned();

    let signed_out = login
        .end_session()
        .post_logout_redirect_uri(SIGNED_OUT)
        .sign_out()
        .await
        .unwrap();
    assert!(signed_out.logout().is_ok());
    let revoked: Vec<String> = provider.revocations().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        revoked,
        [
            refresh_token.clone(),
            token.access_token().secret().to_owned()
        ]
    );
    assert!(!provider.refresh_token_is_live(&refresh_token));
    assert!(store.load("user").await.unwrap().is_none());
    assert!(login.current().is_none());
    // The URL was made before the login was forgotten: it still carries the hint.
    let (status, back) = browse(signed_out.end_session().url()).await;
    assert_eq!(status, 302);
    assert!(signed_out.end_session().is_callback(&back.unwrap()));

    // Nothing left: the next sign-out has no hint, and nothing to revoke.
    let again = login.end_session().sign_out().await.unwrap();
    assert!(!again.end_session().url().contains("id_token_hint"));
    assert_eq!(provider.revocations().len(), 2);
}

#[tokio::test]
async fn urls_that_are_not_for_a_browser_are_refused_before_anything_is_revoked() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let login = sign_in(&provider, &config, Arc::new(MemoryStore::new())).await;
    for bad in [
        "http://app.example.com/signed-out",
        "javascript:alert(1)",
        "https://app.example.com/signed-out#frag",
        "not a url",
    ] {
        let e = login
            .end_session()
            .post_logout_redirect_uri(bad)
            .sign_out()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e:?}");
    }
    assert!(provider.revocations().is_empty());
    assert!(login.current().is_some(), "the login is untouched");

    // An end-session endpoint a browser must not be sent to.
    let tricky = OAuthConfig::builder(provider.token_url())
        .client_id("c")
        .end_session_url("https://user:pw@op.example/logout")
        .build()
        .unwrap();
    let e = tricky.end_session().build().unwrap_err();
    assert!(e.to_string().contains("user info"), "{e}");
    // None at all.
    let none = OAuthConfig::builder(provider.token_url())
        .client_id("c")
        .build()
        .unwrap();
    assert!(none.end_session().build().unwrap_err().is_configuration());
    // A config-only builder has no login to sign out.
    assert!(
        config
            .end_session()
            .sign_out()
            .await
            .unwrap_err()
            .is_configuration()
    );
}

#[tokio::test]
async fn a_failed_revocation_still_gives_the_url_and_forgets_the_login() {
    let provider = TestProvider::start().await;
    let revocation = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "unsupported_token_type"})),
        )
        .mount(&revocation)
        .await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
        .jwks_url(provider.jwks_url())
        .end_session_url(provider.end_session_url())
        .revocation_url(format!("{}/revoke", revocation.uri()))
        .build()
        .unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let login = sign_in(&provider, &config, store.clone()).await;
    let signed_out = login.end_session().sign_out().await.unwrap();
    let e = signed_out.logout().unwrap_err();
    assert_eq!(e.oauth_error().unwrap().error, "unsupported_token_type");
    assert!(signed_out.end_session().url().contains("id_token_hint="));
    assert!(store.load("user").await.unwrap().is_none());
    assert_eq!(browse(signed_out.end_session().url()).await.0, 200);
}

#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Userinfo (signed and not), registration, per-resource refreshes and a sign-out, with
/// tracing captured at TRACE: no token, secret, ID token or state in any line.
#[tokio::test]
async fn no_secret_of_these_flows_reaches_a_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let provider = TestProvider::start().await;
    provider.set_post_logout_redirect_uris(&[SIGNED_OUT]);
    provider.set_registration_token(Some("initial-access-secret"));
    let registration = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .register(
            authed::ClientMetadata::new()
                .redirect_uris([REDIRECT])
                .post_logout_redirect_uris([SIGNED_OUT])
                .initial_access_token("initial-access-secret"),
        )
        .await
        .unwrap();
    let mut secrets = vec![
        "initial-access-secret".to_owned(),
        registration.client_secret().unwrap().secret().to_owned(),
        registration
            .registration_access_token()
            .unwrap()
            .secret()
            .to_owned(),
    ];
    let resource = provider.resource_url("calendar");
    let flow = registration
        .config()
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .resource(&resource)
        .resource(provider.resource_url("files"))
        .build()
        .unwrap();
    let pending = flow.authorize();
    let callback = provider.approve(pending.url()).await;
    let login = flow.complete_url(pending, &callback).await.unwrap();
    login.userinfo().await.unwrap();
    provider.set_userinfo_signed(true);
    login.userinfo().await.unwrap();
    let calendar = login.for_resource(&resource).build().unwrap();
    use authed::TokenSource as _;
    let token = calendar.token().await.unwrap();
    secrets.push(token.access_token().secret().to_owned());
    let own = login.current().unwrap();
    secrets.push(own.access_token().secret().to_owned());
    secrets.push(own.refresh_token().unwrap().secret().to_owned());
    secrets.push(own.id_token().unwrap().secret().to_owned());
    let signed_out = login
        .end_session()
        .post_logout_redirect_uri(SIGNED_OUT)
        .sign_out()
        .await
        .unwrap();
    secrets.push(signed_out.end_session().state().unwrap().to_owned());
    secrets.push(signed_out.end_session().url().to_owned());

    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("provider_request"), "tracing was captured");
    for secret in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "a secret in the logs: {secret:.12}…"
        );
    }
}

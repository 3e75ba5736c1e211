//! Pushed authorization requests (RFC 9126) against the in-process provider: what the
//! browser gets, what is pushed and how it is authenticated (every client authentication
//! method, DPoP included), when pushing happens, and the single-use, expiring `request_uri`.

use std::time::Duration;

use authed::testing::{Browsed, ManualClock, TestProvider};
use authed::{ClientAuthMethod, Error, OAuthConfig, SigningAlgorithm, TokenSource};

#[path = "support/par_setup.rs"]
mod par_setup;
use par_setup::{REDIRECT, config, query};

#[tokio::test]
async fn the_browser_gets_only_client_id_and_request_uri_and_every_parameter_is_pushed() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid", "email"])
        .prompt("login")
        .login_hint("ada@example.com")
        .pushed(true)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let front = query(pending.url());
    assert_eq!(
        front
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ["client_id", "request_uri"].into(),
        "nothing but client_id and request_uri reaches the browser: {front:?}"
    );
    assert!(front["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(pending.request_expires_at().is_some());

    let pushed = provider.pushed_requests();
    assert_eq!(pushed.len(), 1);
    let p = &pushed[0];
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", TestProvider::CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("code_challenge_method", "S256"),
        ("prompt", "login"),
        ("login_hint", "ada@example.com"),
    ] {
        assert_eq!(p.get(k).map(String::as_str), Some(v), "{k} in {p:?}");
    }
    assert!(p.contains_key("state") && p.contains_key("nonce") && p.contains_key("code_challenge"));
    assert!(
        !p.contains_key("client_secret"),
        "secrets are not request parameters"
    );

    let callback = provider.browse(pending.url()).await.callback();
    let login = flow.complete(pending, &callback).await.unwrap();
    assert_eq!(login.id_token_claims().unwrap().sub(), "user-1");
}

#[tokio::test]
async fn every_client_authentication_method_pushes_and_signs_in() {
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
        ClientAuthMethod::ClientSecretJwt,
        ClientAuthMethod::PrivateKeyJwt,
        ClientAuthMethod::None,
    ] {
        let provider = TestProvider::start().await;
        let config = config(&provider, method);
        let flow = config
            .authorization_code(REDIRECT)
            .scopes(["openid"])
            .pushed(true)
            .build()
            .unwrap();
        let pending = flow.authorize().await.unwrap();
        let callback = provider.browse(pending.url()).await.callback();
        let login = flow.complete(pending, &callback).await.unwrap();
        assert!(login.token().await.is_ok(), "{method:?}");
        assert_eq!(provider.pushed_requests().len(), 1, "{method:?}");
        let assertions = provider.accepted_assertions();
        if method == ClientAuthMethod::PrivateKeyJwt {
            // One assertion at /par, one at /token; the PAR one names the issuer.
            assert_eq!(assertions.len(), 2, "{method:?}");
            assert_eq!(assertions[0]["aud"], provider.issuer());
        }
    }
}

#[tokio::test]
async fn a_dpop_configuration_proves_its_key_at_par_and_the_code_is_bound_to_it() {
    let provider = TestProvider::start().await;
    provider.set_dpop_nonce_required(true);
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .jwks_url(provider.jwks_url())
        .authorization_url(provider.authorization_url())
        .par_url(provider.par_url())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .auth_method(ClientAuthMethod::None)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let thumbprint = config.dpop_key().unwrap().thumbprint().to_owned();
    let flow = config
        .authorization_code(REDIRECT)
        .pushed(true)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    assert_eq!(
        provider.pushed_requests()[0]["dpop_jkt"],
        thumbprint,
        "the proof at PAR (after one use_dpop_nonce) binds the code"
    );
    assert!(!query(pending.url()).contains_key("dpop_jkt"));
    let callback = provider.browse(pending.url()).await.callback();
    let login = flow.complete(pending, &callback).await.unwrap();
    assert_eq!(login.current().unwrap().token_type(), "DPoP");
}

#[tokio::test]
async fn pushing_happens_when_discovery_says_the_provider_requires_it() {
    let provider = TestProvider::start().await;
    provider.set_require_pushed_authorization_requests(true);
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    assert!(config.endpoints().require_pushed_authorization_requests);
    assert_eq!(
        config.endpoints().par_url.as_ref().map(|u| u.to_string()),
        Some(provider.par_url())
    );
    let flow = config.authorization_code(REDIRECT).build().unwrap();
    let pending = flow.authorize().await.unwrap();
    assert!(query(pending.url()).contains_key("request_uri"));
    let callback = provider.browse(pending.url()).await.callback();
    flow.complete(pending, &callback).await.unwrap();

    // The provider refuses a request that was not pushed: what a client without PAR meets.
    let plain = provider
        .config(None)
        .authorization_code(REDIRECT)
        .build()
        .unwrap();
    let pending = plain.authorize().await.unwrap();
    assert!(matches!(
        provider.browse(pending.url()).await,
        Browsed::Refused { status: 400, .. }
    ));
}

#[tokio::test]
async fn a_request_uri_is_used_once_and_not_after_it_expires() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(std::time::SystemTime::now());
    provider.set_clock(clock.clone());
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .pushed(true)
        .build()
        .unwrap();

    let pending = flow.authorize().await.unwrap();
    let first = provider.browse(pending.url()).await;
    assert!(matches!(first, Browsed::Redirect(_)));
    assert_eq!(
        provider.browse(pending.url()).await,
        Browsed::Refused {
            status: 400,
            error: "invalid_request_uri".into()
        },
        "a replayed request_uri is refused"
    );

    let late = flow.authorize().await.unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        provider.browse(late.url()).await,
        Browsed::Refused {
            status: 400,
            error: "invalid_request_uri".into()
        },
        "an expired request_uri is refused"
    );
    // The first sign-in still completes: the code, not the request_uri, is what is spent.
    flow.complete(pending, &first.callback()).await.unwrap();
}

#[tokio::test]
async fn a_pushed_request_that_is_refused_is_a_typed_error_and_nothing_reaches_the_browser() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .authorization_url(provider.authorization_url())
        .par_url(provider.par_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .build()
        .unwrap();
    let flow = config
        .authorization_code(REDIRECT)
        .pushed(true)
        .build()
        .unwrap();
    let e = flow.authorize().await.unwrap_err();
    assert!(e.is_invalid_client(), "{e:?}");
    assert!(provider.authorize_requests().is_empty());

    let no_par = OAuthConfig::builder(provider.token_url())
        .authorization_url(provider.authorization_url())
        .client_id(TestProvider::CLIENT_ID)
        .build()
        .unwrap();
    let e = no_par
        .authorization_code(REDIRECT)
        .pushed(true)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

#[tokio::test]
async fn a_pushed_answer_without_request_uri_or_expires_in_is_malformed() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for body in [
        serde_json::json!({"expires_in": 60}),
        serde_json::json!({"request_uri": "urn:x", "expires_in": 0}),
        serde_json::json!({"request_uri": "urn:x"}),
        serde_json::json!({"request_uri": 7, "expires_in": 60}),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/par"))
            .respond_with(ResponseTemplate::new(201).set_body_json(&body))
            .mount(&server)
            .await;
        let config = OAuthConfig::builder(format!("{}/token", server.uri()))
            .authorization_url(format!("{}/authorize", server.uri()))
            .par_url(format!("{}/par", server.uri()))
            .client_id("c")
            .client_secret("s")
            .build()
            .unwrap();
        let flow = config
            .authorization_code(REDIRECT)
            .pushed(true)
            .build()
            .unwrap();
        let e = flow.authorize().await.unwrap_err();
        assert!(
            matches!(e, Error::MalformedResponse { status: 201, .. }),
            "{body}: {e:?}"
        );
    }
}

//! Step-up authentication (RFC 9470) against the in-process provider: an API's
//! `insufficient_user_authentication` challenge is a typed error carrying `acr_values` and
//! `max_age` (no refresh, no second request), and the sign-in that answers it asks for them
//! and checks the ID token's `acr` and `auth_time`.

use std::sync::Arc;
use std::time::Duration;

use authed::testing::TestProvider;
use authed::{AuthedClient, Error, IdTokenError, MemoryStore, StepUp, TokenStore};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const GOLD: &str = "urn:authed:loa:2";

#[tokio::test]
async fn a_step_up_challenge_is_a_typed_error_not_a_refresh_and_the_new_sign_in_satisfies_it() {
    let provider = TestProvider::start().await;
    provider.set_api_required_acr(Some(GOLD), Some(Duration::from_secs(300)));
    let config = provider.config(None);
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = provider.browse(pending.url()).await.callback();
    let login = Arc::new(flow.complete(pending, &callback).await.unwrap());
    assert_eq!(login.id_token_claims().unwrap().get("acr"), None);
    let client = AuthedClient::builder(login.clone())
        .base_url(provider.api_url())
        .build()
        .unwrap();
    let tokens_before = provider.token_requests();

    let e = client.get("payments").send().await.unwrap_err();
    let Error::StepUpRequired(step_up) = &e else {
        panic!("expected StepUpRequired, got {e:?}");
    };
    assert_eq!(step_up.acr_values(), [GOLD]);
    assert_eq!(step_up.max_age(), Some(Duration::from_secs(300)));
    assert!(e.requires_reauthorization() && !e.is_retryable());
    assert_eq!(e.kind(), "step_up_required");
    assert_eq!(
        e.to_string(),
        "the API asks for a new sign-in with acr_values \"urn:authed:loa:2\" and at most 300s \
         old (a stronger authentication is required)"
    );
    assert_eq!(provider.api_requests(), 1, "not sent again");
    assert_eq!(provider.token_requests(), tokens_before, "not refreshed");

    let stepped = config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .step_up(step_up)
        .build()
        .unwrap();
    let pending = stepped.authorize().await.unwrap();
    let asked = provider.browse(pending.url()).await;
    let sent = provider.authorize_requests().pop().unwrap();
    assert_eq!(sent["acr_values"], GOLD);
    assert_eq!(sent["max_age"], "300");
    let login = Arc::new(stepped.complete(pending, &asked.callback()).await.unwrap());
    assert_eq!(login.id_token_claims().unwrap().get("acr").unwrap(), GOLD);
    let client = AuthedClient::builder(login)
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("payments").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_id_token_whose_acr_is_not_asked_for_is_refused_and_nothing_is_stored() {
    let provider = TestProvider::start().await;
    provider.set_user_acr(Some("urn:authed:loa:1"));
    let store = Arc::new(MemoryStore::new());
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .acr_values([GOLD, "urn:authed:loa:3"])
        .store(store.clone())
        .key("alice")
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = provider.browse(pending.url()).await.callback();
    let e = flow.complete(pending, &callback).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::Acr)), "{e:?}");
    assert!(store.load("alice").await.unwrap().is_none());
}

#[tokio::test]
async fn max_age_is_checked_against_auth_time_at_its_boundary() {
    let provider = TestProvider::start().await;
    let sign_in = |age: u64| {
        let provider = &provider;
        async move {
            provider.set_user_authenticated_ago(Duration::from_secs(age));
            let flow = provider
                .config(None)
                .authorization_code(REDIRECT)
                .scopes(["openid"])
                .max_age(Duration::from_secs(300))
                .build()
                .unwrap();
            let pending = flow.authorize().await.unwrap();
            let callback = provider.browse(pending.url()).await.callback();
            flow.complete(pending, &callback).await
        }
    };
    // 300 s allowed, with 60 s of clock skew on top; the clocks here agree to the second.
    assert!(sign_in(0).await.is_ok());
    assert!(sign_in(330).await.is_ok());
    let e = sign_in(600).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::AuthTime)), "{e:?}");
}

#[tokio::test]
async fn prompt_and_login_hint_go_out_with_the_sign_in() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .prompt("login")
        .login_hint("ada@example.com")
        .acr_values(["urn:authed:loa:1"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    provider.browse(pending.url()).await;
    let sent = provider.authorize_requests().pop().unwrap();
    assert_eq!(sent["prompt"], "login");
    assert_eq!(sent["login_hint"], "ada@example.com");
    assert_eq!(sent["acr_values"], "urn:authed:loa:1");
    assert!(!sent.contains_key("max_age"));
}

#[test]
fn acr_values_and_max_age_cannot_be_set_around_the_checks() {
    let provider_config = authed::OAuthConfig::builder("https://a.example/token")
        .authorization_url("https://a.example/authorize")
        .client_id("c")
        .build()
        .unwrap();
    for name in [
        "acr_values",
        "max_age",
        "request",
        "request_uri",
        "response_mode",
    ] {
        let e = provider_config
            .authorization_code(REDIRECT)
            .param(name, "x")
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{name}: {e:?}");
    }
    let s = StepUp::new(["a", "b"], None);
    assert_eq!(s.acr_values(), ["a", "b"]);
}

//! The authorization code flow with PKCE against the in-process provider.

use std::collections::HashMap;
use std::sync::Arc;

use authed::testing::TestProvider;
use authed::{
    AuthedClient, Callback, CallbackError, Error, MemoryStore, PendingAuthorization, TokenStore,
};

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The pending authorization's secrets, read the way a session store would keep them.
fn secrets(pending: &PendingAuthorization) -> (String, String) {
    let v = serde_json::to_value(pending).unwrap();
    (
        v["state"].as_str().unwrap().to_owned(),
        v["verifier"].as_str().unwrap().to_owned(),
    )
}

/// Plays the browser: follows the authorization URL to the provider and returns where it
/// redirects (the callback URL).
async fn browse(url: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn authorize_url_carries_s256_state_nonce_scopes_and_extra_params() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid", "email"])
        .prompt("consent")
        .login_hint("ada@example.com")
        .access_type("offline")
        .resource("https://api.example.com")
        .audience("reports")
        .param("custom", "x y")
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let url = url::Url::parse(pending.url()).unwrap();
    assert_eq!(url.path(), "/authorize");
    let q = query(pending.url());
    let (state, verifier) = secrets(&pending);
    let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(verifier.clone()),
    );
    let expected: HashMap<String, String> = [
        ("response_type", "code"),
        ("client_id", TestProvider::CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("nonce", pending.nonce().unwrap()),
        ("prompt", "consent"),
        ("login_hint", "ada@example.com"),
        ("access_type", "offline"),
        ("resource", "https://api.example.com"),
        ("audience", "reports"),
        ("custom", "x y"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(q, expected);
    // RFC 7636: 43 to 128 characters; 32 random bytes give 43.
    assert_eq!(verifier.len(), 43);
    assert!(state.len() >= 22);

    let again = flow.authorize().await.unwrap();
    let (state2, verifier2) = secrets(&again);
    assert_ne!(state, state2);
    assert_ne!(verifier, verifier2);
    assert_ne!(again.nonce(), pending.nonce());

    // No openid, no nonce; reserved parameters are refused.
    let plain = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["repo"])
        .build()
        .unwrap();
    assert!(!query(plain.authorize().await.unwrap().url()).contains_key("nonce"));
    let e = provider
        .config(None)
        .authorization_code(REDIRECT)
        .param("state", "fixed")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    // Debug shows no secret.
    let shown = format!("{pending:?}");
    assert!(
        !shown.contains(&state) && !shown.contains(&verifier),
        "{shown}"
    );
}

#[tokio::test]
async fn verifier_reaches_the_token_request_and_the_login_works() {
    let provider = TestProvider::start().await;
    let store = Arc::new(MemoryStore::new());
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .store(store.clone())
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    // A web app keeps the pending authorization in its session store between requests.
    let saved = serde_json::to_string(&pending).unwrap();
    let pending: PendingAuthorization = serde_json::from_str(&saved).unwrap();
    let callback = browse(pending.url()).await;
    assert!(callback.starts_with(REDIRECT));
    assert_eq!(query(&callback)["iss"], provider.issuer());

    let (_, verifier) = secrets(&pending);
    let login = flow.complete_url(pending, &callback).await.unwrap();

    let forms = provider.token_forms();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0]["grant_type"], "authorization_code");
    assert_eq!(forms[0]["code"], query(&callback)["code"]);
    assert_eq!(forms[0]["code_verifier"], verifier);
    assert_eq!(forms[0]["redirect_uri"], REDIRECT);
    // The login was saved before it was handed out, refresh token included.
    let stored = store.load(login.key()).await.unwrap().unwrap();
    assert!(stored.refresh_token().is_some());
    assert_eq!(
        stored.access_token(),
        login.current().unwrap().access_token()
    );

    let client = AuthedClient::builder(login.clone())
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("me").send().await.unwrap().status(), 200);
    assert_eq!(provider.token_requests(), 1);

    // A sign-in completes once: the session's copy is refused without a request.
    let replayed: PendingAuthorization = serde_json::from_str(&saved).unwrap();
    let e = flow.complete_url(replayed, &callback).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::AlreadyCompleted)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 1);
    let claims = login.id_token_claims().unwrap();
    assert_eq!(claims.sub(), "user-1");
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_by_the_provider() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = browse(pending.url()).await;
    // Another authorization's pending state with this one's state: a verifier that does not
    // match the challenge.
    let mut other = serde_json::to_value(flow.authorize().await.unwrap()).unwrap();
    other["state"] = serde_json::to_value(&pending).unwrap()["state"].clone();
    let other: PendingAuthorization = serde_json::from_value(other).unwrap();
    let e = flow.complete_url(other, &callback).await.unwrap_err();
    assert!(matches!(e, Error::TokenRevoked(_)), "{e:?}");
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn state_and_issuer_mismatches_are_rejected_before_any_token_request() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let saved = serde_json::to_string(&pending).unwrap();
    let copy = || serde_json::from_str::<PendingAuthorization>(&saved).unwrap();
    let callback = browse(pending.url()).await;
    let code = query(&callback)["code"].clone();
    let (state, _) = secrets(&pending);

    // A callback whose state is not this sign-in's does not spend it.
    let cases = [
        (
            Callback::new(code.clone(), "not-the-state"),
            CallbackError::StateMismatch,
        ),
        (
            Callback::new(code.clone(), format!("{state}x")),
            CallbackError::StateMismatch,
        ),
        (
            Callback::new(code.clone(), &state[..state.len() - 1]),
            CallbackError::StateMismatch,
        ),
        (
            Callback::from_query(&format!("code={code}")),
            CallbackError::MissingState,
        ),
    ];
    for (c, expected) in &cases {
        let e = flow.complete(copy(), c).await.unwrap_err();
        assert!(
            matches!(e, Error::Callback(k) if k == *expected),
            "{c:?}: {e:?}"
        );
        assert!(e.requires_reauthorization());
    }
    assert_eq!(provider.token_requests(), 0);

    // The right state and issuer pass (the code is still unspent).
    let ok = Callback::new(code, state).iss(provider.issuer());
    flow.complete(pending, &ok).await.unwrap();
    assert_eq!(provider.token_requests(), 1);

    // A matching state with another issuer, or without a code, is refused (and spends it).
    for (make, expected) in [
        (
            (|s: &str| Callback::new("c", s).iss("https://evil.example.com"))
                as fn(&str) -> Callback,
            CallbackError::IssuerMismatch,
        ),
        (
            |s: &str| Callback::from_query(&format!("state={s}")),
            CallbackError::MissingCode,
        ),
    ] {
        let pending = flow.authorize().await.unwrap();
        let (state, _) = secrets(&pending);
        let e = flow.complete(pending, &make(&state)).await.unwrap_err();
        assert!(matches!(e, Error::Callback(k) if k == expected), "{e:?}");
    }
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn callback_errors_become_typed_errors_with_the_description() {
    let provider = TestProvider::start().await;
    provider.set_authorize_error(Some(("access_denied", "the user said no")));
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = browse(pending.url()).await;
    match flow.complete_url(pending, &callback).await {
        Err(Error::AccessDenied(e)) => {
            assert_eq!(e.error, "access_denied");
            assert_eq!(e.description.as_deref(), Some("the user said no"));
            assert_eq!(e.status, None);
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }

    let pending = flow.authorize().await.unwrap();
    let (state, _) = secrets(&pending);
    let q = format!("error=temporarily_unavailable&error_description=later&state={state}");
    let e = flow
        .complete(pending, &Callback::from_query(&q))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "temporarily_unavailable"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // A forged error with another state is reported as a state mismatch.
    let q = "error=access_denied&state=forged";
    let e = flow
        .complete(flow.authorize().await.unwrap(), &Callback::from_query(q))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::StateMismatch)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test]
async fn a_missing_authorization_endpoint_is_a_configuration_error() {
    let config = authed::OAuthConfig::builder("https://a.example/token")
        .client_id("c")
        .build()
        .unwrap();
    assert!(matches!(
        config.authorization_code(REDIRECT).build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        config.device_authorization().build(),
        Err(Error::Config(_))
    ));
    let token = authed::Token::new(authed::AccessToken::new("x"));
    assert!(matches!(config.revoke(&token).await, Err(Error::Config(_))));
}

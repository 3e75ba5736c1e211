//! Issue 18 point 1, played by an attacker who holds a copy of a `PendingAuthorization` (a
//! session store read twice, a leaked session) and the callback it was completed with: a
//! sign-in is spent once for as long as it could be replayed, whichever flow of the same
//! configuration the replay goes through, however many sign-ins came in between; and a
//! pending authorization that has outlived its lifetime is refused with a typed error. Each
//! test counts the token requests that reached the provider: a replay sends none.

use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AuthorizationCode, Callback, CallbackError, Error, OAuthConfig, PendingAuthorization,
};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn copy(pending: &PendingAuthorization) -> PendingAuthorization {
    serde_json::from_value(serde_json::to_value(pending).unwrap()).unwrap()
}

fn state_of(pending: &PendingAuthorization) -> String {
    serde_json::to_value(pending).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn flow(config: &OAuthConfig) -> AuthorizationCode {
    config.authorization_code(REDIRECT).build().unwrap()
}

/// Plays the browser at the provider: the callback it is sent back with.
async fn callback(provider: &TestProvider, pending: &PendingAuthorization) -> Callback {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(pending.url())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let mut callback = Callback::from_url(&location).unwrap();
    if !location.contains("iss=") {
        callback = callback.iss(provider.issuer());
    }
    callback
}

fn is_spent(e: &Error) -> bool {
    matches!(e, Error::Callback(CallbackError::AlreadyCompleted))
}

#[tokio::test]
async fn a_replay_after_thousands_of_later_sign_ins_sends_nothing() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider.config(None));
    let pending = flow.authorize();
    let saved = copy(&pending);
    let callback = callback(&provider, &pending).await;
    flow.complete(pending, &callback).await.unwrap();
    assert_eq!(provider.token_requests(), 1);

    // 5,000 later sign-ins, each refused by the user (no token request), each spent.
    for _ in 0..5000 {
        let later = flow.authorize();
        let refused = Callback::from_query(&format!(
            "error=access_denied&state={}&iss={}",
            state_of(&later),
            provider.issuer()
        ));
        let e = flow.complete(later, &refused).await.unwrap_err();
        assert!(matches!(e, Error::AccessDenied(_)), "{e:?}");
    }
    assert_eq!(provider.token_requests(), 1);

    // The first sign-in, replayed from the copy: still spent, and its code is not sent.
    let e = flow.complete(saved, &callback).await.unwrap_err();
    assert!(is_spent(&e), "{e:?}");
    assert_eq!(provider.token_requests(), 1, "the code was sent again");
}

#[tokio::test]
async fn a_replay_through_another_flow_of_the_same_configuration_sends_nothing() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let first = flow(&config);
    let second = flow(&config);
    let third = flow(&config.clone());
    let pending = first.authorize();
    let saved = [copy(&pending), copy(&pending)];
    let callback = callback(&provider, &pending).await;
    first.complete(pending, &callback).await.unwrap();
    for (other, saved) in [&second, &third].into_iter().zip(saved) {
        let e = other.complete(saved, &callback).await.unwrap_err();
        assert!(is_spent(&e), "{e:?}");
    }
    assert_eq!(provider.token_requests(), 1, "the code was sent again");
}

#[tokio::test]
async fn an_expired_pending_authorization_is_refused_without_a_request() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    let flow = config
        .authorization_code(REDIRECT)
        .pending_lifetime(Duration::from_secs(600))
        .build()
        .unwrap();

    // Within its lifetime, to the second: completed.
    let pending = flow.authorize();
    let callback_ok = callback(&provider, &pending).await;
    clock.advance(Duration::from_secs(600));
    flow.complete(pending, &callback_ok).await.unwrap();
    assert_eq!(provider.token_requests(), 1);

    // One second later it would have expired: refused, typed, nothing sent.
    let pending = flow.authorize();
    let saved = copy(&pending);
    let late = callback(&provider, &pending).await;
    clock.advance(Duration::from_secs(601));
    let e = flow.complete(pending, &late).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::Expired)),
        "{e:?}"
    );
    assert!(e.requires_reauthorization() && !e.is_retryable());
    // A copy of it stays refused, and the clock running on does not bring it back.
    clock.advance(Duration::from_secs(3600));
    let e = flow.complete(saved, &late).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::Expired)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 1);

    // A pending authorization kept by an older version has no lifetime: refused too.
    let pending = flow.authorize();
    let mut old = serde_json::to_value(&pending).unwrap();
    old.as_object_mut()
        .unwrap()
        .retain(|k, _| ["url", "redirect_uri", "state", "verifier", "nonce"].contains(&k.as_str()));
    let old: PendingAuthorization = serde_json::from_value(old).unwrap();
    let cb = callback(&provider, &pending).await;
    let e = flow.complete(old, &cb).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::Expired)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 1);
}

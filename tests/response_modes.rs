//! Response modes against the in-process provider: `form_post` (the response in a form the
//! browser POSTs, read by the same strict parser as a query, single use) and JARM (one signed
//! JWT, verified before anything in it is trusted).

use authed::testing::{Browsed, TestProvider};
use authed::{Callback, CallbackError, Error, PendingAuthorization, ResponseMode};

const REDIRECT: &str = "https://app.example.com/callback";

/// A second copy of a pending authorization, as a session store read twice would give.
fn copy(pending: &PendingAuthorization) -> PendingAuthorization {
    serde_json::from_value(serde_json::to_value(pending).unwrap()).unwrap()
}

#[tokio::test]
async fn a_form_post_response_signs_in_through_the_post_body() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .response_mode(ResponseMode::FormPost)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let again = copy(&pending);
    let browsed = provider.browse(pending.url()).await;
    let Browsed::FormPost { action, body } = &browsed else {
        panic!("expected a form, got {browsed:?}");
    };
    assert_eq!(action, REDIRECT);
    assert!(body.contains("code=") && body.contains("state=") && body.contains("iss="));
    assert_eq!(
        provider.authorize_requests()[0]["response_mode"],
        "form_post"
    );
    let callback = Callback::from_form_post(body);
    let login = flow.complete(pending, &callback).await.unwrap();
    assert_eq!(login.id_token_claims().unwrap().sub(), "user-1");

    // Single use: the same POST replayed (with a copy of the session) sends nothing.
    let requests = provider.token_requests();
    let e = flow.complete(again, &callback).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::AlreadyCompleted)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), requests);
}

#[tokio::test]
async fn a_form_body_is_parsed_as_strictly_as_a_query() {
    let provider = TestProvider::start().await;
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .response_mode(ResponseMode::FormPost)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let Browsed::FormPost { body, .. } = provider.browse(pending.url()).await else {
        panic!("a form");
    };
    for (bad, why) in [
        (
            format!("{body}&code=injected"),
            CallbackError::DuplicateParameter("code"),
        ),
        (
            format!("{body}&state=other"),
            CallbackError::DuplicateParameter("state"),
        ),
        (
            format!("{body}&error=access_denied"),
            CallbackError::CodeAndError,
        ),
        (
            format!("{body}&response=a&response=b"),
            CallbackError::DuplicateParameter("response"),
        ),
        (
            format!("{body}&response={}", "x".repeat(17 * 1024)),
            CallbackError::TooLong("response"),
        ),
    ] {
        let e = flow
            .complete(copy(&pending), &Callback::from_form_post(&bad))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Callback(w) if w == why),
            "{bad:.60}: {e:?}"
        );
    }
    assert_eq!(provider.token_requests(), 0, "nothing was sent");
    // The good body still completes: refused callbacks did not spend the sign-in.
    flow.complete(pending, &Callback::from_form_post(&body))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_loopback_receiver_refuses_a_form_post_flow_before_anything_is_pushed() {
    let provider = TestProvider::start().await;
    let receiver = authed::LoopbackReceiver::builder()
        .open_browser(false)
        .bind()
        .await
        .unwrap();
    let flow = provider
        .config(None)
        .authorization_code(receiver.redirect_uri())
        .response_mode(ResponseMode::FormPost)
        .pushed(true)
        .build()
        .unwrap();
    let e = receiver.sign_in(&flow).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(provider.pushed_requests().is_empty(), "nothing was pushed");
}

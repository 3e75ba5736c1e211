//! The device authorization grant (RFC 8628) with Tokio's paused clock: exact poll times.

use std::time::Duration;

use authed::testing::TestProvider;
use authed::{AuthedClient, Error};
use tokio::time::Instant;

fn offsets(start: Instant, polls: &[Instant]) -> Vec<u64> {
    polls.iter().map(|p| (*p - start).as_secs()).collect()
}

#[tokio::test(start_paused = true)]
async fn pending_then_slow_down_then_success() {
    let provider = TestProvider::start().await;
    provider.set_device_script([
        "authorization_pending",
        "slow_down",
        "authorization_pending",
    ]);
    let device = provider
        .config(None)
        .device_authorization()
        .scopes(["profile"])
        .build()
        .unwrap();
    let code = device.start().await.unwrap();
    let start = Instant::now();
    assert_eq!(
        code.interval(),
        Duration::from_secs(5),
        "RFC 8628 default interval"
    );
    assert!(code.user_code().starts_with('U'));
    assert_eq!(
        code.verification_uri(),
        format!("{}/device", provider.base_url())
    );
    assert_eq!(
        code.verification_uri_complete().unwrap(),
        format!(
            "{}/device?user_code={}",
            provider.base_url(),
            code.user_code()
        )
    );
    let shown = format!("{code:?}");
    assert!(!shown.contains(code.user_code()), "{shown}");

    let login = device.poll(&code).await.unwrap();
    // 5 s, 5 s, then slow_down: 10 s from then on.
    assert_eq!(
        offsets(start, &provider.device_polls()),
        vec![5, 10, 20, 30]
    );
    let forms = provider.token_forms();
    assert_eq!(forms.len(), 4);
    assert!(
        forms
            .iter()
            .all(|f| f["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code")
    );
    assert!(login.current().unwrap().refresh_token().is_some());
    let client = AuthedClient::builder(login)
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("me").send().await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn the_providers_interval_is_honoured() {
    let provider = TestProvider::start().await;
    provider.set_device_interval(Some(7));
    provider.set_device_script(["authorization_pending"]);
    let device = provider
        .config(None)
        .device_authorization()
        .build()
        .unwrap();
    let code = device.start().await.unwrap();
    let start = Instant::now();
    device.poll(&code).await.unwrap();
    assert_eq!(offsets(start, &provider.device_polls()), vec![7, 14]);
}

#[tokio::test(start_paused = true)]
async fn expired_token_and_access_denied_are_typed() {
    let provider = TestProvider::start().await;
    let device = provider
        .config(None)
        .device_authorization()
        .build()
        .unwrap();

    provider.set_device_script(["authorization_pending", "expired_token"]);
    let code = device.start().await.unwrap();
    match device.poll(&code).await {
        Err(Error::OAuth(e)) => assert_eq!(e.error, "expired_token"),
        other => panic!("expected expired_token, got {other:?}"),
    }

    provider.set_device_script(["access_denied"]);
    let code = device.start().await.unwrap();
    let e = device.poll(&code).await.unwrap_err();
    assert!(matches!(e, Error::AccessDenied(_)), "{e:?}");
    assert!(e.requires_reauthorization());
    assert_eq!(provider.device_polls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_code_that_expires_between_polls_stops_polling() {
    let provider = TestProvider::start().await;
    provider.set_device_expires_in(12);
    provider.set_device_script(vec!["authorization_pending"; 100]);
    let device = provider
        .config(None)
        .device_authorization()
        .build()
        .unwrap();
    let code = device.start().await.unwrap();
    let start = Instant::now();
    match device.poll(&code).await {
        Err(Error::OAuth(e)) => assert_eq!(e.error, "expired_token"),
        other => panic!("expected expired_token, got {other:?}"),
    }
    assert_eq!(offsets(start, &provider.device_polls()), vec![5, 10]);
    // The call ends at the deadline, not at the poll that would have come after it.
    assert_eq!(Instant::now() - start, Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_polling() {
    let provider = TestProvider::start().await;
    provider.set_device_script(vec!["authorization_pending"; 100]);
    let device = provider
        .config(None)
        .device_authorization()
        .build()
        .unwrap();
    let code = device.start().await.unwrap();
    let start = Instant::now();
    let cancel = tokio::time::sleep(Duration::from_secs(12));
    tokio::select! {
        r = device.poll(&code) => panic!("polling ended on its own: {r:?}"),
        () = cancel => {}
    }
    assert_eq!(offsets(start, &provider.device_polls()), vec![5, 10]);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        provider.device_polls().len(),
        2,
        "no poll after cancellation"
    );
}

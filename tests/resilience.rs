//! Transient failures against a token endpoint that misbehaves on purpose (tests/support):
//! retries within their budget, `Retry-After`, one backoff for every caller of a cache, the
//! device flow through faults, and revoked logins that never take a newer one with them.
//! Tokio's clock is paused: every time below is exact.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::testing::ManualClock;
use authed::{
    AccessToken, Callback, Error, FileStore, OAuthConfig, RefreshToken, RetryPolicy, Token,
    TokenSource, TokenStore,
};
use support::fault_server::{Fault, FaultServer};
use tokio::time::Instant;

fn config(server: &FaultServer, retry: RetryPolicy) -> OAuthConfig {
    OAuthConfig::builder(server.token_url())
        .client_id("client")
        .client_secret("secret")
        .authorization_url(server.url("/authorize"))
        .device_authorization_url(server.url("/device"))
        .timeout(Duration::from_secs(5))
        .retry(retry)
        .clock(ManualClock::new(start()))
        .build()
        .unwrap()
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

#[tokio::test(start_paused = true)]
async fn client_credentials_ride_out_a_500_and_a_reset() {
    let server = FaultServer::start().await;
    server.script([Fault::Status500, Fault::ResetMidBody], Fault::Token);
    let source = config(&server, RetryPolicy::default())
        .client_credentials()
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "at-3");
    assert_eq!(server.token_requests(), 3);
    // Equal jitter: the first retry 125..=250 ms after the failure, the second 250..=500 ms.
    let t = server.token_request_times();
    let (first, second) = (t[1] - t[0], t[2] - t[1]);
    assert!((Duration::from_millis(125)..=Duration::from_millis(250)).contains(&first));
    assert!((Duration::from_millis(250)..=Duration::from_millis(500)).contains(&second));
}

#[tokio::test(start_paused = true)]
async fn retries_end_at_the_attempt_budget_and_the_time_budget() {
    let server = FaultServer::start().await;
    server.script([], Fault::BadGatewayHtml);
    let cc = |retry| config(&server, retry).client_credentials().build();
    let e = cc(RetryPolicy::default()).token().await.unwrap_err();
    assert!(
        matches!(e, Error::MalformedResponse { status: 502, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(server.token_requests(), 3);

    let e = cc(RetryPolicy::none()).token().await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(server.token_requests(), 4);

    // No answer: each attempt takes the 5 s timeout; a third would end after the 10 s budget.
    server.script([], Fault::NoAnswer);
    let started = Instant::now();
    let e = cc(RetryPolicy::default().with_attempts(10))
        .token()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(server.token_requests(), 6);
    assert!(started.elapsed() <= Duration::from_secs(11));
}

#[tokio::test(start_paused = true)]
async fn an_authorization_code_exchange_is_never_retried() {
    let server = FaultServer::start().await;
    server.script([], Fault::Status500);
    let flow = config(&server, RetryPolicy::default().with_attempts(5))
        .authorization_code("http://127.0.0.1:9/callback")
        .build()
        .unwrap();
    let pending = flow.authorize();
    let state = url::Url::parse(pending.url())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let e = flow
        .complete(pending, &Callback::new("the-code", state))
        .await
        .unwrap_err();
    // Reported as spent, not retryable: the remedy is a new sign-in (issue 8.1).
    assert!(
        matches!(&e, Error::CodeExchange(inner) if matches!(**inner, Error::MalformedResponse { status: 500, .. })),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(server.token_requests(), 1, "a code is sent once");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_typed_error_and_closes_the_endpoint_for_every_caller() {
    let server = FaultServer::start().await;
    server.script([Fault::RetryAfter(429, "30")], Fault::Token);
    let config = config(&server, RetryPolicy::default());
    let e = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    match &e {
        Error::RateLimited {
            status: 429,
            retry_after: Some(d),
            ..
        } => assert_eq!(*d, Duration::from_secs(30)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(server.token_requests(), 1);

    // Sixteen other sources of the same configuration (other scopes, other caches): all
    // refused at once, nothing sent, each told how long is left.
    tokio::time::advance(Duration::from_secs(10)).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let source = config
                .client_credentials()
                .scopes([format!("s{i}")])
                .build();
            tokio::spawn(async move { source.token().await.map(drop) })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(20)), "{e:?}");
    }
    assert_eq!(server.token_requests(), 1);

    // A caller whose budget covers the wait sits it out and gets its token right after.
    let patient = OAuthConfig::builder(server.token_url())
        .client_id("client")
        .client_secret("secret")
        .retry(RetryPolicy::default().with_max_elapsed(Duration::from_secs(60)))
        .build()
        .unwrap();
    server.script([Fault::RetryAfter(503, "7")], Fault::Token);
    let started = Instant::now();
    patient.client_credentials().build().token().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_a_date_and_a_hostile_value_is_capped() {
    let server = FaultServer::start().await;
    server.script([Fault::RetryAfter(429, "31536000")], Fault::Token);
    let e = config(&server, RetryPolicy::default())
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(300)), "{e:?}");

    let server = FaultServer::start().await;
    // Read with the configuration's clock (`start()`), like every other time.
    let date = httpdate::fmt_http_date(start() + Duration::from_secs(120));
    server.script(
        [Fault::RetryAfter(503, Box::leak(date.into_boxed_str()))],
        Fault::Token,
    );
    let e = config(&server, RetryPolicy::default())
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RateLimited { status: 503, .. }), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
}

/// 64 callers at once, the endpoint down: requests follow the backoff schedule (1 s, 2 s,
/// 4 s after the first, second and third failure), whatever the number of callers.
#[tokio::test(start_paused = true)]
async fn no_thundering_herd_while_the_provider_is_down() {
    let server = FaultServer::start().await;
    server.script([], Fault::Status500);
    let clock = ManualClock::new(start());
    let source = Arc::new(
        OAuthConfig::builder(server.token_url())
            .client_id("client")
            .client_secret("secret")
            .retry(RetryPolicy::none())
            .clock(clock.clone())
            .build()
            .unwrap()
            .client_credentials()
            .build(),
    );
    let wave = || async {
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let source = source.clone();
                tokio::spawn(async move { source.token().await.map(drop) })
            })
            .collect();
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(
                matches!(e, Error::MalformedResponse { status: 500, .. }),
                "{e:?}"
            );
        }
        server.token_requests()
    };
    let mut counts = vec![wave().await];
    for step_ms in [999, 1, 1999, 1, 3999, 1] {
        clock.advance(Duration::from_millis(step_ms));
        counts.push(wave().await);
    }
    assert_eq!(counts, vec![1, 1, 2, 2, 3, 3, 4]);

    // The provider comes back: the next caller after the backoff gets a token, and the
    // schedule starts over.
    server.script([], Fault::Token);
    clock.advance(Duration::from_secs(8));
    source.token().await.unwrap();
    assert_eq!(server.token_requests(), 5);
}

fn device_config(server: &FaultServer) -> authed::DeviceAuthorization {
    config(server, RetryPolicy::default())
        .device_authorization()
        .build()
        .unwrap()
}

fn offsets(start: Instant, times: &[Instant]) -> Vec<u64> {
    times.iter().map(|t| (*t - start).as_secs()).collect()
}

#[tokio::test(start_paused = true)]
async fn device_slow_down_uses_the_interval_it_names() {
    // GitHub: `slow_down` with HTTP 200 and the new interval.
    // https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow
    let server = FaultServer::start().await;
    server.script(
        [
            Fault::Json(200, r#"{"error":"slow_down","error_description":"Too many requests have been made in the same timeframe.","interval":12}"#),
            Fault::Json(400, r#"{"error":"slow_down"}"#),
        ],
        Fault::Token,
    );
    let device = device_config(&server);
    let code = device.start().await.unwrap();
    let started = Instant::now();
    device.poll(&code).await.unwrap();
    // 5 s; then the named 12 s; then RFC 8628's +5 s: 17 s.
    assert_eq!(
        offsets(started, &server.token_request_times()),
        vec![5, 17, 34]
    );
}

#[tokio::test(start_paused = true)]
async fn device_polling_survives_5xx_and_429_and_honours_retry_after() {
    let server = FaultServer::start().await;
    server.script(
        [
            Fault::Status500,
            Fault::RetryAfter(429, "30"),
            Fault::Json(400, r#"{"error":"authorization_pending"}"#),
        ],
        Fault::Token,
    );
    let device = device_config(&server);
    let code = device.start().await.unwrap();
    let started = Instant::now();
    device.poll(&code).await.unwrap();
    // 5 s; a 500 doubles the wait (10 s); a 429 asks for 30 s; then the interval again.
    assert_eq!(
        offsets(started, &server.token_request_times()),
        vec![5, 15, 45, 50]
    );
}

// Issue 18 point 9: RFC 8628 §3.5 — `slow_down` adds 5 s "for this and all subsequent
// requests", and a client "SHOULD use a reasonable exponential backoff policy" when the
// connection times out. A timeout or a 5xx after a `slow_down` backs off from the slowed
// interval, and the slowed interval stays in force once the provider answers again.
#[tokio::test(start_paused = true)]
async fn device_polling_backs_off_after_a_timeout_or_5xx_and_keeps_the_slowed_interval() {
    let pending = || Fault::Json(400, r#"{"error":"authorization_pending"}"#);
    for (failure, took) in [(Fault::NoAnswer, 5), (Fault::Status500, 0)] {
        let server = FaultServer::start().await;
        server.script(
            [
                Fault::Json(400, r#"{"error":"slow_down"}"#),
                failure.clone(),
                pending(),
                pending(),
            ],
            Fault::Token,
        );
        let device = device_config(&server);
        let code = device.start().await.unwrap();
        let started = Instant::now();
        device.poll(&code).await.unwrap();
        // 5 s; slow_down: 10 s from now on; the failure (a 5 s timeout, or a 500) doubles it
        // once: 20 s; then 10 s again, not the 5 s from before the slow_down.
        let t = 5 + 10 + took;
        assert_eq!(
            offsets(started, &server.token_request_times()),
            vec![5, 15, t + 20, t + 30, t + 40],
            "{failure:?}"
        );
        assert_eq!(server.token_requests(), 5);
    }
}

// GitHub sends `slow_down` with HTTP 200 and the new `interval`
// (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow).
// Some gateways send a 429 with the same body. Either way the interval rises, and stays.
#[tokio::test(start_paused = true)]
async fn device_slow_down_as_a_429_slows_polling_down_for_good() {
    let server = FaultServer::start().await;
    server.script(
        [
            Fault::Json(429, r#"{"error":"slow_down","interval":15}"#),
            Fault::Json(400, r#"{"error":"authorization_pending"}"#),
            Fault::Json(400, r#"{"error":"authorization_pending"}"#),
        ],
        Fault::Token,
    );
    let device = device_config(&server);
    let code = device.start().await.unwrap();
    let started = Instant::now();
    device.poll(&code).await.unwrap();
    assert_eq!(
        offsets(started, &server.token_request_times()),
        vec![5, 20, 35, 50]
    );
}

#[tokio::test(start_paused = true)]
async fn device_polling_never_runs_past_the_codes_expiry() {
    for (fault, polls) in [(Fault::NoAnswer, 1), (Fault::Status500, 2)] {
        let server = FaultServer::start().await;
        server.set_device(20, 5);
        server.script([], fault.clone());
        let device = device_config(&server);
        let code = device.start().await.unwrap();
        let started = Instant::now();
        match device.poll(&code).await {
            Err(Error::OAuth(e)) => assert_eq!(e.error, "expired_token"),
            other => panic!("{fault:?}: expected expired_token, got {other:?}"),
        }
        assert_eq!(started.elapsed(), Duration::from_secs(20), "{fault:?}");
        assert_eq!(server.token_requests(), polls, "{fault:?}");
    }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "authed-{name}-{}-{}",
            std::process::id(),
            oauth2::CsrfToken::new_random().secret()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn login(rt: &str) -> Token {
    Token::new(AccessToken::new(format!("at-{rt}")))
        .with_refresh_token(Some(RefreshToken::new(rt)))
        .with_expires_at(Some(start() - Duration::from_secs(1)))
}

const INVALID_GRANT: &str =
    r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#;

/// The rejection of an old refresh token arrives after a newer login was saved: the newer
/// login stays, whether it was saved by a new sign-in (which waits for the refresh lock) or
/// by a writer that bypassed the lock (compare-and-delete).
#[tokio::test(start_paused = true)]
async fn invalid_grant_never_destroys_a_newer_login() {
    for bypass_lock in [false, true] {
        let server = FaultServer::start().await;
        server.script(
            [Fault::SlowJson(Duration::from_secs(3), 400, INVALID_GRANT)],
            Fault::Token,
        );
        let dir = TempDir::new("newer-login");
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.0.join("tokens.json")));
        store.save("k", &login("rt-old")).await.unwrap();
        let config = config(&server, RetryPolicy::none());
        let old = config
            .refresh_token_source()
            .store(store.clone())
            .key("k")
            .from_store()
            .await
            .unwrap()
            .unwrap();
        let refresh = tokio::spawn(async move { old.token().await.map(drop) });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(server.token_requests(), 1, "the refresh is in flight");

        let newer = login("rt-new").with_expires_at(Some(start() + Duration::from_secs(3600)));
        if bypass_lock {
            store.save("k", &newer).await.unwrap();
        } else {
            config
                .refresh_token_source()
                .store(store.clone())
                .key("k")
                .from_token(newer)
                .await
                .unwrap();
        }
        let e = refresh.await.unwrap().unwrap_err();
        assert!(e.is_revoked(), "{e:?}");
        let kept = store
            .load("k")
            .await
            .unwrap()
            .expect("the newer login was deleted");
        assert_eq!(kept.refresh_token().unwrap().secret(), "rt-new");
    }
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_still_removes_the_rejected_login() {
    let server = FaultServer::start().await;
    server.script([Fault::Json(400, INVALID_GRANT)], Fault::Token);
    let dir = TempDir::new("rejected-login");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.0.join("tokens.json")));
    store.save("k", &login("rt-old")).await.unwrap();
    let source = config(&server, RetryPolicy::default())
        .refresh_token_source()
        .store(store.clone())
        .key("k")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    assert!(source.token().await.unwrap_err().is_revoked());
    assert!(store.load("k").await.unwrap().is_none());
    assert_eq!(server.token_requests(), 1, "invalid_grant is not retried");
}

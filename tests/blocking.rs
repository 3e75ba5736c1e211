//! `authed::blocking` from plain `#[test]` functions, as a program without Tokio uses it:
//! the in-process provider runs on a runtime of its own that the test thread never enters.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{AccessToken, AuthedClient, Clock, Error, MemoryStore, RefreshToken, Token, blocking};

/// The provider, on a runtime the test thread is not inside.
struct Provider {
    provider: TestProvider,
    // Dropped after the provider, whose server task runs on it.
    _runtime: tokio::runtime::Runtime,
}

fn provider() -> Provider {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let provider = runtime.block_on(TestProvider::start());
    Provider {
        provider,
        _runtime: runtime,
    }
}

fn client(p: &TestProvider, clock: Arc<ManualClock>) -> blocking::AuthedClient {
    let config = p.config(Some(clock));
    let client = AuthedClient::builder(config.client_credentials().build())
        .base_url(p.api_url())
        .build()
        .unwrap();
    blocking::AuthedClient::new(client)
}

#[test]
fn the_blocking_client_gets_reuses_and_refreshes_tokens() {
    let Provider { provider: p, .. } = &provider();
    let clock = ManualClock::new(SystemTime::now());
    let client = client(p, clock.clone());

    for i in 0..3 {
        let response = client.get(format!("items/{i}")).send().unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["path"], format!("/api/items/{i}"));
    }
    assert_eq!(p.token_requests(), 1, "one token for three requests");

    // Expired by the configuration's clock: the next request refreshes first.
    clock.advance(Duration::from_secs(3600));
    let text = client
        .get("items/after-expiry")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("after-expiry"), "{text}");
    assert_eq!(p.token_requests(), 2);

    // The API refuses every token: one 401, one refresh, one re-send.
    p.revoke_access_tokens();
    let response = client.get("items/after-revocation").send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(p.api_rejections(), 1);
    assert_eq!(p.token_requests(), 3);
    assert_eq!(p.api_requests(), 6);
}

#[test]
fn the_blocking_client_keeps_the_origin_rule_and_typed_errors() {
    let Provider { provider: p, .. } = &provider();
    let client = client(p, ManualClock::new(SystemTime::now()));
    let e = client.get("https://elsewhere.example/").send().unwrap_err();
    assert!(matches!(e, Error::UntrustedOrigin { .. }), "{e:?}");
    assert_eq!(p.token_requests(), 0);

    let wrong = authed::OAuthConfig::builder(p.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .build()
        .unwrap();
    let client = blocking::AuthedClient::new(
        AuthedClient::builder(wrong.client_credentials().build())
            .base_url(p.api_url())
            .build()
            .unwrap(),
    );
    let e = client.get("items/1").send().unwrap_err();
    assert!(e.is_invalid_client(), "{e:?}");
}

#[test]
fn a_blocking_source_shares_one_cache_and_one_token_request_across_threads() {
    let Provider { provider: p, .. } = &provider();
    // Slow enough that the threads overlap; the count is exact either way.
    p.set_latency(Duration::from_millis(50));
    let client = client(p, ManualClock::new(SystemTime::now()));
    let source = client.source();
    let tokens: Vec<Arc<Token>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let source = source.clone();
                s.spawn(move || source.token().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(p.token_requests(), 1);
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token() == tokens[0].access_token())
    );

    // The client uses the same cache: no second token request.
    assert_eq!(client.get("items/1").send().unwrap().status(), 200);
    assert_eq!(p.token_requests(), 1);

    // Reporting the token as rejected gets a new one, once.
    let fresh = source.token_rejected(&tokens[0]).unwrap();
    assert_ne!(fresh.access_token(), tokens[0].access_token());
    assert_eq!(p.token_requests(), 2);
}

#[test]
fn a_user_login_refreshes_and_rotates_through_block_on() {
    let Provider { provider: p, .. } = &provider();
    let clock = ManualClock::new(SystemTime::now());
    let config = p.config(Some(clock.clone()));
    let first_rt = p.issue_refresh_token();
    let token = Token::new(AccessToken::new("initial"))
        .with_lifetime(clock.now(), Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(first_rt.clone())));
    let store = Arc::new(MemoryStore::new());

    let builder = config
        .refresh_token_source()
        .store(store.clone())
        .key("user-1");
    let login = blocking::block_on(builder.from_token(token))
        .unwrap()
        .unwrap();
    let login = blocking::Source::new(login);

    assert_eq!(login.token().unwrap().access_token().secret(), "initial");
    clock.advance(Duration::from_secs(3600));
    let refreshed = login.token().unwrap();
    assert_ne!(refreshed.access_token().secret(), "initial");
    let new_rt = refreshed.refresh_token().unwrap().secret().to_owned();
    assert_ne!(new_rt, first_rt, "the refresh token rotated");
    assert_eq!(p.presented_refresh_tokens(), [first_rt]);
    assert!(p.refresh_token_is_live(&new_rt));
    // Saved before it was handed out.
    let stored =
        blocking::block_on(async move { authed::TokenStore::load(&*store, "user-1").await })
            .unwrap()
            .unwrap()
            .unwrap();
    assert_eq!(stored.access_token(), refreshed.access_token());
}

#[tokio::test]
async fn inside_an_async_runtime_every_call_is_a_configuration_error_and_sends_nothing() {
    let p = TestProvider::start().await;
    let client = client(&p, ManualClock::new(SystemTime::now()));

    let e = client.get("items/1").send().unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.is_configuration());
    assert!(e.to_string().contains("inside an async runtime"), "{e}");
    let e = client.source().token().unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
    assert!(blocking::block_on(async { 1 }).is_err());

    // spawn_blocking threads are inside the runtime's context too: refused, as documented.
    let inner = client.clone();
    let e = tokio::task::spawn_blocking(move || inner.get("items/1").send().unwrap_err())
        .await
        .unwrap();
    assert!(e.is_configuration(), "{e:?}");

    assert_eq!(p.token_requests(), 0);
    assert_eq!(p.api_requests(), 0);
    // Dropping the blocking client here is fine: its runtime ends on its own thread.
    drop(client);
}

#[test]
fn a_blocking_client_moves_to_another_thread() {
    // Only the calling thread's context counts: runtimes on other threads are no problem.
    let Provider { provider: p, .. } = &provider();
    let client = client(p, ManualClock::new(SystemTime::now()));
    let handle = std::thread::spawn(move || client.get("items/x").send().map(|r| r.status()));
    assert_eq!(handle.join().unwrap().unwrap(), 200);
}

#[test]
fn dropping_the_last_blocking_value_does_not_cancel_a_background_refresh() {
    let Provider { provider: p, .. } = &provider();
    // The background refresh takes a while, so it is still in flight when the source is
    // dropped; with a runtime per value it would be cancelled after the provider rotated the
    // refresh token and before the store saved it.
    p.set_latency(Duration::from_millis(300));
    let clock = ManualClock::new(SystemTime::now());
    let config = p.config(Some(clock.clone()));
    let first_rt = p.issue_refresh_token();
    let token = Token::new(AccessToken::new("initial"))
        .with_lifetime(clock.now(), Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(first_rt.clone())));
    let (saved_tx, saved_rx) = std::sync::mpsc::channel::<String>();
    let saved_tx = std::sync::Mutex::new(saved_tx);
    let store = Arc::new(authed::ObservedStore::new(
        MemoryStore::new(),
        move |change| {
            if let authed::StoreChange::Saved { token, .. } = change {
                let rt = token.refresh_token().map(|r| r.secret().to_owned());
                let _ = saved_tx.lock().unwrap().send(rt.unwrap_or_default());
            }
        },
    ));
    let builder = config.refresh_token_source().store(store).key("user-1");
    let login = blocking::block_on(builder.from_token(token))
        .unwrap()
        .unwrap();
    assert_eq!(saved_rx.recv().unwrap(), first_rt, "the login was saved");

    // Inside the refresh-ahead window, before the expiry margin: the current token comes
    // back at once and the refresh runs in the background.
    clock.advance(Duration::from_secs(3600 - 60 - 60));
    let login = blocking::Source::new(login);
    assert_eq!(login.token().unwrap().access_token().secret(), "initial");
    drop(login);

    // An event, not a sleep: the rotated refresh token reaches the store.
    let rotated = saved_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the background refresh finished and saved the rotated refresh token");
    assert_ne!(rotated, first_rt);
    assert!(p.refresh_token_is_live(&rotated));
    assert_eq!(p.presented_refresh_tokens(), [first_rt]);
}

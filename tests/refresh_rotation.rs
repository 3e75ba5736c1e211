//! A user's login refreshing through the shared cache: rotation persisted before use, the
//! old refresh token never sent again, store failures, revocation and logout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AuthedClient, BoxFuture, Error, MemoryStore, ObservedStore, RefreshTokenSource, StoreChange,
    Token, TokenSource, TokenStore,
};

/// A store whose saves fail while `fail` is set.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail: AtomicBool,
}

impl TokenStore for FlakyStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        self.inner.load(key)
    }
    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        if self.fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::store(std::io::Error::other("disk full"))) });
        }
        self.inner.save(key, token)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.delete(key)
    }
}

struct Setup {
    provider: TestProvider,
    clock: Arc<ManualClock>,
    config: authed::OAuthConfig,
}

async fn setup() -> Setup {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    Setup {
        provider,
        clock,
        config,
    }
}

/// A login as a sign-in would leave it: a fresh refresh token and an access token.
async fn login(s: &Setup, store: Arc<dyn TokenStore>) -> RefreshTokenSource {
    let rt = s.provider.issue_refresh_token();
    let token = Token::new(authed::AccessToken::new("initial"))
        .with_lifetime(authed::Clock::now(&*s.clock), Duration::from_secs(3600))
        .with_refresh_token(Some(authed::RefreshToken::new(rt)));
    s.config
        .refresh_token_source()
        .store(store)
        .key("user-1")
        .from_token(token)
        .await
        .unwrap()
}

fn rt_of(t: &Token) -> String {
    t.refresh_token().unwrap().secret().to_owned()
}

#[tokio::test]
async fn rotated_refresh_tokens_are_persisted_and_the_old_one_is_never_sent_again() {
    let s = setup().await;
    let store = Arc::new(MemoryStore::new());
    let login = login(&s, store.clone()).await;
    let first_rt = rt_of(&store.load("user-1").await.unwrap().unwrap());

    let mut seen = vec![first_rt.clone()];
    for round in 1..=4 {
        s.clock.advance(Duration::from_secs(3600));
        let token = login.token().await.unwrap();
        let stored = store.load("user-1").await.unwrap().unwrap();
        // What was handed out is what the store holds, with a new refresh token.
        assert_eq!(stored.access_token(), token.access_token());
        let rt = rt_of(&stored);
        assert!(
            !seen.contains(&rt),
            "round {round}: refresh token not rotated"
        );
        assert!(s.provider.refresh_token_is_live(&rt));
        seen.push(rt);
    }
    // Each refresh token was presented exactly once, in order; the last one is unspent.
    assert_eq!(s.provider.presented_refresh_tokens(), seen[..4].to_vec());
    assert_eq!(s.provider.invalid_grants(), 0);
    assert_eq!(s.provider.token_requests(), 4);
}

#[tokio::test]
async fn a_response_without_refresh_token_keeps_the_old_one() {
    let s = setup().await;
    s.provider.set_rotate_refresh_tokens(false);
    let store = Arc::new(MemoryStore::new());
    let login = login(&s, store.clone()).await;
    let rt = rt_of(&store.load("user-1").await.unwrap().unwrap());
    for _ in 0..3 {
        s.clock.advance(Duration::from_secs(3600));
        let token = login.token().await.unwrap();
        assert_eq!(rt_of(&token), rt);
        assert_eq!(rt_of(&store.load("user-1").await.unwrap().unwrap()), rt);
    }
    assert_eq!(
        s.provider.presented_refresh_tokens(),
        vec![rt.clone(), rt.clone(), rt]
    );
}

#[tokio::test]
async fn a_failing_store_is_an_error_and_hands_out_no_token() {
    let s = setup().await;
    let store = Arc::new(FlakyStore::default());
    let login = login(&s, store.clone()).await;
    let before = store.load("user-1").await.unwrap().unwrap();

    s.clock.advance(Duration::from_secs(3600));
    store.fail.store(true, Ordering::SeqCst);
    let e = login.token().await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert_eq!(s.provider.token_requests(), 1);
    // The store still has the old login; the cache does not hand out the unsaved token.
    assert!(store.load("user-1").await.unwrap().unwrap() == before);
    assert!(matches!(login.token().await, Err(Error::Store(_))));
    assert_eq!(
        s.provider.token_requests(),
        1,
        "the rotated refresh token must not be lost to a second refresh"
    );

    // Once the store works, the token fetched earlier is saved first, then handed out.
    store.fail.store(false, Ordering::SeqCst);
    let token = login.token().await.unwrap();
    let stored = store.load("user-1").await.unwrap().unwrap();
    assert_eq!(stored.access_token(), token.access_token());
    assert_ne!(rt_of(&stored), rt_of(&before));
    assert_eq!(s.provider.token_requests(), 1);
    assert_eq!(s.provider.invalid_grants(), 0);
}

#[tokio::test]
async fn a_token_that_could_not_be_saved_never_overwrites_a_newer_login() {
    let s = setup().await;
    let store = Arc::new(FlakyStore::default());
    let login = login(&s, store.clone()).await;

    s.clock.advance(Duration::from_secs(3600));
    store.fail.store(true, Ordering::SeqCst);
    assert!(matches!(login.token().await, Err(Error::Store(_))));
    // Meanwhile another process (or a fenced store's newer lock holder) saves a newer login.
    let newer = Token::new(authed::AccessToken::new("newer"))
        .with_lifetime(authed::Clock::now(&*s.clock), Duration::from_secs(3600))
        .with_refresh_token(Some(authed::RefreshToken::new(
            s.provider.issue_refresh_token(),
        )));
    store.inner.save("user-1", &newer).await.unwrap();

    // Once the store works, the newer login wins: the token this process could not save is
    // dropped, not written over it.
    store.fail.store(false, Ordering::SeqCst);
    let token = login.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "newer");
    let stored = store.load("user-1").await.unwrap().unwrap();
    assert_eq!(stored.access_token().secret(), "newer");
    assert_eq!(rt_of(&stored), rt_of(&newer));
    assert_eq!(s.provider.token_requests(), 1);
}

#[tokio::test]
async fn invalid_grant_removes_the_login_and_stays_revoked() {
    let s = setup().await;
    let store = Arc::new(MemoryStore::new());
    let login = login(&s, store.clone()).await;
    // The user revokes the app at the provider.
    let stored = store.load("user-1").await.unwrap().unwrap();
    s.config
        .revoke_refresh_token(stored.refresh_token().unwrap())
        .await
        .unwrap();

    s.clock.advance(Duration::from_secs(3600));
    let e = login.token().await.unwrap_err();
    assert!(matches!(e, Error::TokenRevoked(_)), "{e:?}");
    assert!(e.requires_reauthorization());
    assert!(store.load("user-1").await.unwrap().is_none());
    let requests = s.provider.token_requests();
    // Nothing retries on its own, and no request is made with nothing to refresh with.
    let e = login.token().await.unwrap_err();
    assert!(matches!(e, Error::TokenRevoked(_)), "{e:?}");
    assert_eq!(s.provider.token_requests(), requests);
}

#[tokio::test]
async fn a_stored_login_is_resumed_without_a_request() {
    let s = setup().await;
    let store = Arc::new(MemoryStore::new());
    let first = login(&s, store.clone()).await;
    let token = first.token().await.unwrap();
    drop(first);
    let resumed = s
        .config
        .refresh_token_source()
        .store(store.clone())
        .key("user-1")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resumed.token().await.unwrap().access_token(),
        token.access_token()
    );
    assert_eq!(s.provider.token_requests(), 0);
    let none = s
        .config
        .refresh_token_source()
        .store(store)
        .key("user-2")
        .from_store()
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn revocation_and_logout_send_the_right_requests_and_clear_the_store() {
    let s = setup().await;
    let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = changes.clone();
    let store = Arc::new(ObservedStore::new(MemoryStore::new(), move |c| {
        log.lock().unwrap().push(match c {
            StoreChange::Saved { key, token } => {
                format!("saved {key} {}", token.access_token().secret())
            }
            StoreChange::Deleted { key } => format!("deleted {key}"),
            _ => "other".to_owned(),
        });
    }));
    let login = login(&s, store.clone()).await;
    s.clock.advance(Duration::from_secs(3600));
    let token = login.token().await.unwrap();
    let client = AuthedClient::builder(login.clone())
        .base_url(s.provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("x").send().await.unwrap().status(), 200);

    assert!(login.logout().await.unwrap().is_revoked());
    assert_eq!(
        s.provider.revocations(),
        vec![
            (rt_of(&token), Some("refresh_token".to_owned())),
            (
                token.access_token().secret().to_owned(),
                Some("access_token".to_owned())
            ),
        ]
    );
    assert!(store.load("user-1").await.unwrap().is_none());
    assert!(!s.provider.refresh_token_is_live(&rt_of(&token)));
    assert_eq!(
        *changes.lock().unwrap(),
        vec![
            "saved user-1 initial".to_owned(),
            format!("saved user-1 {}", token.access_token().secret()),
            "deleted user-1".to_owned(),
        ]
    );
    // Signed out: no token, no request, and the API refuses the old access token.
    let requests = s.provider.token_requests();
    assert!(matches!(login.token().await, Err(Error::TokenRevoked(_))));
    assert_eq!(s.provider.token_requests(), requests);
    let resp = reqwest::Client::new()
        .get(format!("{}x", s.provider.api_url()))
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn revoking_a_token_without_refresh_token_sends_one_request() {
    let s = setup().await;
    let token = Token::new(authed::AccessToken::new("at-only"));
    s.config.revoke(&token).await.unwrap();
    assert_eq!(
        s.provider.revocations(),
        vec![("at-only".to_owned(), Some("access_token".to_owned()))]
    );
}

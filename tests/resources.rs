//! Several resources, one login (RFC 8707 §2.2) against the in-process provider, which issues
//! a token per resource, rotates the refresh token on every refresh and answers
//! `invalid_grant` to any reuse: each resource has its own cached token and single flight,
//! all of them spend the one refresh token in turn, and a rotated refresh token is never lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AccessToken, AuthedClient, BoxFuture, Error, FileStore, MemoryStore, OAuthConfig, RefreshToken,
    RefreshTokenSource, ResourceTokenSource, Token, TokenSource, TokenStore,
};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Setup {
    provider: TestProvider,
    clock: Arc<ManualClock>,
    config: OAuthConfig,
    resources: Vec<String>,
}

async fn setup(names: &[&str]) -> Setup {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    let resources = names.iter().map(|n| provider.resource_url(n)).collect();
    Setup {
        provider,
        clock,
        config,
        resources,
    }
}

impl Setup {
    /// A login whose grant covers every resource, as a sign-in naming them leaves it.
    async fn login(&self, store: Arc<dyn TokenStore>) -> RefreshTokenSource {
        let resources: Vec<&str> = self.resources.iter().map(String::as_str).collect();
        let rt = self.provider.issue_refresh_token_for_resources(&resources);
        let token = Token::new(AccessToken::new("the-logins-own"))
            .with_lifetime(authed::Clock::now(&*self.clock), Duration::from_secs(3600))
            .with_refresh_token(Some(RefreshToken::new(rt)));
        self.config
            .refresh_token_source()
            .store(store)
            .key("user")
            .from_token(token)
            .await
            .unwrap()
    }

    fn sources(&self, login: &RefreshTokenSource) -> Vec<ResourceTokenSource> {
        self.resources
            .iter()
            .map(|r| login.for_resource(r).build().unwrap())
            .collect()
    }

    /// The refresh tokens presented so far form one chain: each one the provider issued
    /// in the answer to the one before, none presented twice.
    fn assert_one_chain(&self) {
        let presented = self.provider.presented_refresh_tokens();
        let distinct: HashSet<&String> = presented.iter().collect();
        assert_eq!(
            distinct.len(),
            presented.len(),
            "a refresh token presented twice"
        );
        assert_eq!(self.provider.invalid_grants(), 0);
    }
}

fn resource_forms(provider: &TestProvider) -> Vec<Option<String>> {
    provider
        .token_forms()
        .into_iter()
        .filter(|f| f["grant_type"] == "refresh_token")
        .map(|f| f.get("resource").cloned())
        .collect()
}

#[tokio::test]
async fn each_resource_has_its_own_token_and_single_flight_and_all_share_one_refresh_token() {
    let s = setup(&["calendar", "contacts", "files"]).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let login = s.login(store.clone()).await;
    let sources = s.sources(&login);

    // 20 callers per resource, all at once: one token request per resource.
    let mut tasks = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        for _ in 0..20 {
            let source = source.clone();
            tasks.push(tokio::spawn(
                async move { (i, source.token().await.unwrap()) },
            ));
        }
    }
    let mut tokens: Vec<HashSet<String>> = vec![HashSet::new(); 3];
    for task in tasks {
        let (i, token) = task.await.unwrap();
        tokens[i].insert(token.access_token().secret().to_owned());
    }
    assert_eq!(s.provider.token_requests(), 3, "one per resource");
    for (i, set) in tokens.iter().enumerate() {
        assert_eq!(set.len(), 1, "every caller of a resource got its one token");
        let token = set.iter().next().unwrap();
        assert_eq!(
            s.provider.access_token_resource(token).as_deref(),
            Some(s.resources[i].as_str())
        );
        assert!(sources[i].current().unwrap().refresh_token().is_none());
    }
    s.assert_one_chain();
    let mut asked: Vec<String> = resource_forms(&s.provider).into_iter().flatten().collect();
    asked.sort();
    assert_eq!(asked, s.resources);

    // The login keeps its own access token, and the one live refresh token, in the store.
    let stored = store.load("user").await.unwrap().unwrap();
    assert_eq!(stored.access_token().secret(), "the-logins-own");
    let live = stored.refresh_token().unwrap().secret().to_owned();
    assert!(s.provider.refresh_token_is_live(&live));
    assert_eq!(
        login.current().unwrap().refresh_token().unwrap().secret(),
        live
    );

    // Each resource server takes its own token, and refuses another's.
    let calendar = AuthedClient::builder(sources[0].clone())
        .base_url(format!("{}/", s.resources[0]))
        .build()
        .unwrap();
    let answer: serde_json::Value = calendar
        .get("events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["resource"], s.resources[0].as_str());
    let stolen = sources[1].current().unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{}/events", s.resources[0]))
        .bearer_auth(stolen.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn refreshes_for_every_resource_and_the_login_itself_take_turns_without_losing_a_rotation() {
    let s = setup(&["a", "b"]).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let login = Arc::new(s.login(store.clone()).await);
    let sources = s.sources(&login);
    for round in 0..5 {
        // Everything expired at once: the login and both resources refresh together.
        s.clock.advance(Duration::from_secs(3600));
        let (own, a, b) = tokio::join!(login.token(), sources[0].token(), sources[1].token());
        let (own, a, b) = (own.unwrap(), a.unwrap(), b.unwrap());
        assert_eq!(
            s.provider
                .access_token_resource(own.access_token().secret()),
            None
        );
        assert!(
            s.provider
                .access_token_resource(a.access_token().secret())
                .unwrap()
                .ends_with("/rs/a")
        );
        assert!(
            s.provider
                .access_token_resource(b.access_token().secret())
                .unwrap()
                .ends_with("/rs/b")
        );
        assert_eq!(s.provider.token_requests(), 3 * (round + 1));
    }
    s.assert_one_chain();
    let stored = store.load("user").await.unwrap().unwrap();
    assert!(
        s.provider
            .refresh_token_is_live(stored.refresh_token().unwrap().secret())
    );
    // The login's own refreshes name no resource (the login was not made for one).
    let forms = resource_forms(&s.provider);
    assert_eq!(forms.iter().filter(|r| r.is_none()).count(), 5);
}

/// A store whose saves fail while `fail` is set, and which counts saves.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail: AtomicBool,
    saves: AtomicUsize,
}

impl TokenStore for FlakyStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        self.inner.load(key)
    }
    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        if self.fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::store(std::io::Error::other("disk full"))) });
        }
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, token)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.delete(key)
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_before_the_token_is_handed_out_and_never_lost() {
    let s = setup(&["a", "b"]).await;
    let store = Arc::new(FlakyStore::default());
    let login = s.login(store.clone()).await;
    let sources = s.sources(&login);

    sources[0].token().await.unwrap();
    assert_eq!(
        store.saves.load(Ordering::SeqCst),
        2,
        "the login, then its rotation"
    );

    // The store fails: no token for b, whose answer rotated the refresh token...
    store.fail.store(true, Ordering::SeqCst);
    let e = sources[1].token().await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert!(sources[1].current().is_none(), "nothing handed out unsaved");
    // ... whose rotated refresh token is kept and saved first once the store works again:
    // the next refresh presents it, not the spent one.
    store.fail.store(false, Ordering::SeqCst);
    let spent = s
        .provider
        .presented_refresh_tokens()
        .last()
        .unwrap()
        .clone();
    assert!(!s.provider.refresh_token_is_live(&spent));
    sources[1].token().await.unwrap();
    s.assert_one_chain();
    let stored = store.load("user").await.unwrap().unwrap();
    assert!(
        s.provider
            .refresh_token_is_live(stored.refresh_token().unwrap().secret())
    );
}

#[tokio::test]
async fn two_processes_sharing_a_store_never_present_one_refresh_token_twice() {
    let s = setup(&["a", "b", "c"]).await;
    let dir = std::env::temp_dir().join(format!("authed-resources-{}", std::process::id()));
    let path = dir.join("tokens.json");
    let first: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));
    let login = s.login(first).await;
    // A second "process": its own store handle (its own file lock) and its own login.
    let other = s
        .config
        .refresh_token_source()
        .store(Arc::new(FileStore::new(&path)))
        .key("user")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    let (mine, theirs) = (s.sources(&login), s.sources(&other));
    let mut tasks = Vec::new();
    for round in 0..3 {
        for source in mine.iter().chain(&theirs) {
            let source = source.clone();
            tasks.push(tokio::spawn(
                async move { source.token().await.map(|_| round) },
            ));
        }
        for task in tasks.drain(..) {
            task.await.unwrap().unwrap();
        }
        s.clock.advance(Duration::from_secs(3600));
    }
    s.assert_one_chain();
    // Each process refreshed each resource once per round, from the refresh token the other
    // one left when it was newer.
    assert_eq!(s.provider.token_requests(), 3 * 6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_resource_outside_a_grant_the_login_knows_is_refused_before_anything_is_sent() {
    let s = setup(&["a", "b"]).await;
    let resources: Vec<&str> = s.resources.iter().map(String::as_str).collect();
    let rt = s.provider.issue_refresh_token_for_resources(&resources);
    let token = Token::new(AccessToken::new("at"))
        .with_lifetime(authed::Clock::now(&*s.clock), Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(rt)));
    let login = s
        .config
        .refresh_token_source()
        .resource(&s.resources[0])
        .resource(&s.resources[1])
        .from_token(token)
        .await
        .unwrap();
    let e = login
        .for_resource(s.provider.resource_url("not-granted"))
        .build()
        .unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
    assert_eq!(s.provider.token_requests(), 0);
    // Two resources: the login's own refreshes name none.
    s.sources(&login)[1].token().await.unwrap();
    s.clock.advance(Duration::from_secs(3600));
    login.token().await.unwrap();
    assert_eq!(
        resource_forms(&s.provider),
        [Some(s.resources[1].clone()), None]
    );
}

#[tokio::test]
async fn invalid_target_to_a_refresh_ends_the_login_and_its_refresh_token_is_never_presented_again()
{
    // Off: the provider checks the resource first (the refresh token would still be live).
    // On: it spends the refresh token first, as oidc-provider 9 does, and presenting it
    // again would revoke the whole grant. The client cannot tell them apart: either way the
    // refresh token is not presented again.
    for spends_first in [false, true] {
        let s = setup(&["a"]).await;
        s.provider
            .set_invalid_target_spends_refresh_token(spends_first);
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let login = s.login(store.clone()).await; // does not know its resources
        let granted = s.sources(&login).remove(0);
        granted.token().await.unwrap();
        let outside = login
            .for_resource(s.provider.resource_url("not-granted"))
            .build()
            .unwrap();
        let e = outside.token().await.unwrap_err();
        assert_eq!(e.oauth_error().unwrap().error, "invalid_target", "{e:?}");
        assert!(
            store.load("user").await.unwrap().is_none(),
            "the login ended"
        );
        let requests = s.provider.token_requests();
        s.clock.advance(Duration::from_secs(3600));
        assert!(granted.token().await.unwrap_err().is_revoked());
        assert!(login.token().await.unwrap_err().is_revoked());
        assert_eq!(
            s.provider.token_requests(),
            requests,
            "nothing presented again"
        );
        assert_eq!(
            s.provider.invalid_grants(),
            0,
            "spends_first: {spends_first}"
        );
    }
}

#[tokio::test]
async fn a_revoked_login_ends_every_resource_and_no_dead_refresh_token_is_sent_again() {
    let s = setup(&["a", "b"]).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let login = s.login(store.clone()).await;
    let sources = s.sources(&login);
    sources[0].token().await.unwrap();
    // Revoked at the provider (another device signed out, say).
    let rt = login
        .current()
        .unwrap()
        .refresh_token()
        .unwrap()
        .secret()
        .to_owned();
    s.config
        .revoke_refresh_token(&RefreshToken::new(rt))
        .await
        .unwrap();
    let requests = s.provider.token_requests();
    let e = sources[1].token().await.unwrap_err();
    assert!(e.is_revoked(), "{e:?}");
    assert!(
        store.load("user").await.unwrap().is_none(),
        "the dead login is gone"
    );
    // a's token stays until it expires; then nothing is sent.
    s.clock.advance(Duration::from_secs(3600));
    assert!(sources[0].token().await.unwrap_err().is_revoked());
    assert!(login.token().await.unwrap_err().is_revoked());
    assert_eq!(s.provider.token_requests(), requests + 1);
}

#[tokio::test]
async fn scope_sets_are_targets_too_and_the_same_target_shares_one_cache() {
    let s = setup(&["a"]).await;
    let login = s.login(Arc::new(MemoryStore::new())).await;
    let read = login
        .for_scopes(["mail.read", "mail.send"])
        .build()
        .unwrap();
    let same = login
        .for_scopes(["mail.send", "mail.read", "mail.read"])
        .build()
        .unwrap();
    let both = login
        .for_resource(&s.resources[0])
        .scopes(["a:read"])
        .build()
        .unwrap();
    let (x, y, z) = tokio::join!(read.token(), same.token(), both.token());
    assert_eq!(x.unwrap().access_token(), y.unwrap().access_token());
    assert_eq!(s.provider.token_requests(), 2, "one per distinct target");
    let forms: Vec<_> = s.provider.token_forms();
    let scopes: HashSet<Option<&str>> = forms
        .iter()
        .map(|f| f.get("scope").map(String::as_str))
        .collect();
    assert_eq!(
        scopes,
        HashSet::from([Some("mail.read mail.send"), Some("a:read")])
    );
    assert_eq!(z.unwrap().scopes(), Some(&["a:read".to_owned()][..]));
    assert_eq!(read.scopes(), ["mail.read", "mail.send"]);
    assert_eq!(both.resource(), Some(s.resources[0].as_str()));
    s.assert_one_chain();
}

#[tokio::test]
async fn logout_forgets_every_resources_token() {
    let s = setup(&["a"]).await;
    let login = s.login(Arc::new(MemoryStore::new())).await;
    let a = s.sources(&login).remove(0);
    a.token().await.unwrap();
    assert!(login.logout().await.unwrap().is_revoked());
    assert!(a.current().is_none());
    let requests = s.provider.token_requests();
    assert!(a.token().await.unwrap_err().is_revoked());
    assert_eq!(s.provider.token_requests(), requests, "nothing to present");
}

#[tokio::test]
async fn resource_indicators_are_absolute_uris_without_fragments() {
    let s = setup(&[]).await;
    let login = s.login(Arc::new(MemoryStore::new())).await;
    for bad in ["calendar", "/rs/calendar", "https://api.example.com/#x", ""] {
        let e = login.for_resource(bad).build().unwrap_err();
        assert!(e.is_configuration(), "{bad}: {e:?}");
        let e = s
            .config
            .authorization_code(REDIRECT)
            .resource(bad)
            .build()
            .unwrap_err();
        assert!(e.is_configuration(), "{bad}: {e:?}");
    }
    login.for_resource("urn:example:calendar").build().unwrap();
}

/// Plays the browser.
async fn sign_in(
    provider: &TestProvider,
    config: &OAuthConfig,
    resources: &[&str],
) -> RefreshTokenSource {
    let mut flow = config.authorization_code(REDIRECT).scopes(["openid"]);
    for r in resources {
        flow = flow.resource(*r);
    }
    let flow = flow.build().unwrap();
    let pending = flow.authorize();
    let callback = provider.approve(pending.url()).await;
    flow.complete_url(pending, &callback).await.unwrap()
}

#[tokio::test]
async fn a_sign_in_for_one_resource_names_it_on_every_token_request_and_several_use_for_resource() {
    let s = setup(&["mcp", "other"]).await;
    let mcp = s.resources[0].clone();
    let login = sign_in(&s.provider, &s.config, &[&mcp]).await;
    let both = sign_in(&s.provider, &s.config, &[&mcp, &s.resources[1]]).await;
    let authorize = &s.provider.authorize_requests()[0];
    assert_eq!(authorize["resource"], mcp);
    let exchange = &s.provider.token_forms()[0];
    assert_eq!(
        exchange.get("resource"),
        Some(&mcp),
        "the code exchange names it (MCP)"
    );
    let token = login.token().await.unwrap();
    assert_eq!(
        s.provider
            .access_token_resource(token.access_token().secret()),
        Some(mcp.clone())
    );
    s.clock.advance(Duration::from_secs(3600));
    login.token().await.unwrap();
    assert_eq!(
        resource_forms(&s.provider),
        [Some(mcp.clone())],
        "so does the refresh"
    );

    // Several: the login's own token is the provider's default, each resource's from
    // for_resource.
    let exchange = s.provider.token_forms()[1].clone();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange.get("resource"), None);
    let own = both.current().unwrap();
    assert_eq!(
        s.provider
            .access_token_resource(own.access_token().secret()),
        None
    );
    let other = both
        .for_resource(&s.resources[1])
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert_eq!(
        s.provider
            .access_token_resource(other.access_token().secret())
            .as_deref(),
        Some(s.resources[1].as_str())
    );
}

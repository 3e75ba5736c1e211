//! DPoP (RFC 9449) against the in-process provider, which verifies every proof for real
//! (signature by the `jwk` header's key, `typ`, `htm`, `htu`, `iat`, `jti` replay, `ath`,
//! nonce) and binds tokens to the key's thumbprint.

use std::sync::Arc;

use authed::testing::TestProvider;
use authed::{
    AuthedClient, DpopKey, Error, FileStore, MemoryStore, OAuthConfig, OAuthConfigBuilder,
    SigningAlgorithm, StaticToken, Token, TokenSource, TokenStore,
};

/// A test key (RSA 2048, generated for these tests only).
const RS256_PEM: &str = include_str!("support/dpop_rs256.pem");

fn builder(provider: &TestProvider) -> OAuthConfigBuilder {
    OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
}

fn public_builder(provider: &TestProvider) -> OAuthConfigBuilder {
    OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
}

fn client(provider: &TestProvider, source: impl TokenSource + 'static) -> AuthedClient {
    AuthedClient::builder(source)
        .base_url(provider.api_url())
        .build()
        .unwrap()
}

/// Plays the browser: the provider approves at once and redirects to the callback.
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
async fn proofs_of_every_algorithm_are_verified_and_tokens_bound_to_the_key() {
    let provider = TestProvider::start().await;
    let keys = [
        DpopKey::generate(SigningAlgorithm::ES256).unwrap(),
        DpopKey::generate(SigningAlgorithm::EdDSA).unwrap(),
        DpopKey::from_pkcs8_pem(RS256_PEM).unwrap(),
    ];
    for (i, key) in keys.into_iter().enumerate() {
        let config = builder(&provider).dpop_key(key.clone()).build().unwrap();
        let source = config.client_credentials().build();
        let token = source.token().await.unwrap();
        assert_eq!(token.token_type(), "DPoP");
        assert_eq!(token.dpop_key().unwrap().thumbprint(), key.thumbprint());
        assert_eq!(
            provider
                .dpop_jkt_of(token.access_token().secret())
                .as_deref(),
            Some(key.thumbprint()),
            "{:?}",
            key.algorithm()
        );
        let client = client(&provider, source);
        let resp = client.get("hello").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{:?}", provider.dpop_refusals());
        // One proof for the token request, one for the API request.
        assert_eq!(provider.dpop_proofs(), 2 * (i + 1));
    }
    assert_eq!(provider.dpop_refusals(), Vec::<String>::new());
}

#[tokio::test]
async fn the_nonce_dance_happens_once_per_new_nonce() {
    let provider = TestProvider::start().await;
    provider.set_dpop_nonce_required(true);
    let config = builder(&provider)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let client = client(&provider, config.client_credentials().build());

    // Token endpoint: a proof without a nonce gets `use_dpop_nonce`, then one retry.
    for _ in 0..3 {
        let resp = client.get("a").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{:?}", provider.dpop_refusals());
    }
    assert_eq!(provider.token_requests(), 2);
    assert_eq!(provider.dpop_nonce_challenges(), 1);
    // The API shares the provider's origin: the remembered nonce serves it at once.
    assert_eq!(provider.api_requests(), 3);

    // A new nonce at the API: one 401 `use_dpop_nonce`, one retry, no refresh.
    provider.rotate_dpop_nonce();
    let resp = client.get("b").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(provider.dpop_nonce_challenges(), 2);
    assert_eq!(provider.api_requests(), 5);
    assert_eq!(
        provider.token_requests(),
        2,
        "a nonce is not a reason to refresh"
    );

    // Remembered: the next requests carry it.
    for _ in 0..2 {
        client.get("c").send().await.unwrap();
    }
    assert_eq!(provider.dpop_nonce_challenges(), 2);
    assert_eq!(provider.api_requests(), 7);
}

/// Requests in flight when the nonce changes all carry the old one: each gets a
/// `use_dpop_nonce`, and each retries once, even though the first answer already taught the
/// client the new nonce.
#[tokio::test]
async fn concurrent_requests_that_all_miss_a_new_nonce_all_succeed() {
    let provider = TestProvider::start().await;
    provider.set_dpop_nonce_required(true);
    let config = builder(&provider)
        .dpop(SigningAlgorithm::EdDSA)
        .build()
        .unwrap();
    let client = client(&provider, config.client_credentials().build());
    assert_eq!(client.get("warm").send().await.unwrap().status(), 200);
    provider.rotate_dpop_nonce();
    let challenges = provider.dpop_nonce_challenges();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..20 {
        let client = client.clone();
        requests.spawn(async move { client.get(format!("n{i}")).send().await });
    }
    while let Some(result) = requests.join_next().await {
        assert_eq!(result.unwrap().unwrap().status(), 200);
    }
    let dances = provider.dpop_nonce_challenges() - challenges;
    assert!((1..=20).contains(&dances), "{dances}");
    assert_eq!(provider.token_requests(), 2, "no refresh for a nonce");
}

#[tokio::test]
async fn replayed_proofs_other_keys_and_bearer_use_are_refused() {
    let provider = TestProvider::start().await;
    let config = builder(&provider)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let source = config.client_credentials().build();
    let token = source.token().await.unwrap();
    let client = client(&provider, source);
    assert_eq!(client.get("one").send().await.unwrap().status(), 200);
    let proof = provider.last_dpop_proof().unwrap();
    let url = format!("{}one", provider.api_url());
    let http = reqwest::Client::new();
    let at = token.access_token().secret();

    // The same proof again: refused (jti replay).
    let resp = http
        .get(&url)
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(provider.dpop_refusals(), ["jti replayed"]);

    // The DPoP-bound token as a bearer token: refused.
    let resp = http.get(&url).bearer_auth(at).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );

    // The stolen token with a proof by another key: refused, and the client reports it.
    let thief = Token::clone(&token)
        .with_dpop_key(Some(DpopKey::generate(SigningAlgorithm::ES256).unwrap()));
    let e = AuthedClient::builder(StaticToken::from_token(thief))
        .base_url(provider.api_url())
        .build()
        .unwrap()
        .get("one")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert_eq!(
        provider.dpop_refusals().last().unwrap(),
        "the proof's key is not the token's"
    );
}

#[tokio::test]
async fn a_dpop_token_is_never_sent_as_bearer() {
    let provider = TestProvider::start().await;
    // A DPoP token without its key cannot make proofs: refused before anything is sent.
    let orphan = Token::new(authed::AccessToken::new("at-x")).with_token_type("DPoP");
    let e = client(&provider, StaticToken::from_token(orphan))
        .get("x")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert_eq!(provider.api_requests(), 0);
}

#[tokio::test]
async fn a_dpop_source_refuses_a_bearer_token() {
    let provider = TestProvider::start().await;
    provider.set_dpop_issue_bearer(true);
    let config = builder(&provider)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let e = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedTokenType { token_type } if token_type == "Bearer"),
        "{e:?}"
    );
    assert!(e.is_configuration());
    // Without DPoP the same provider's Bearer tokens are fine.
    let plain = builder(&provider).build().unwrap();
    let token = plain.client_credentials().build().token().await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert!(token.dpop_key().is_none());
}

/// A public client's refresh token is bound to its key (RFC 9449 §5): the key is kept with
/// the login, and a restarted app, whose configuration has a new key, refreshes with it.
#[tokio::test]
async fn a_restarted_app_refreshes_a_bound_login_with_the_stored_key() {
    let provider = TestProvider::start().await;
    // A file: the second run reads the key back from its serialized form.
    let dir = std::env::temp_dir().join(format!(
        "authed-dpop-restart-{}-{}",
        std::process::id(),
        oauth2::CsrfToken::new_random().secret()
    ));
    let path = dir.join("tokens.json");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));

    // First run: sign in with DPoP; the code is bound to the key with `dpop_jkt`.
    let first = public_builder(&provider)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let signed_in_key = first.dpop_key().unwrap().clone();
    let flow = first
        .authorization_code(REDIRECT)
        .scopes(["api"])
        .store(store.clone())
        .key("ada")
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let authorize = url::Url::parse(pending.url()).unwrap();
    let jkt = authorize
        .query_pairs()
        .find(|(k, _)| k == "dpop_jkt")
        .map(|(_, v)| v.into_owned());
    assert_eq!(jkt.as_deref(), Some(signed_in_key.thumbprint()));
    let callback = browse(pending.url()).await;
    let login = flow.complete_url(pending, &callback).await.unwrap();
    let token = login.token().await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    let stored = store.load("ada").await.unwrap().unwrap();
    assert_eq!(
        stored.dpop_key().map(DpopKey::thumbprint),
        Some(signed_in_key.thumbprint())
    );
    drop(login);

    // Second run: another process (a new store over the same file), another configuration,
    // another key.
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));
    let second = public_builder(&provider)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    assert_ne!(
        second.dpop_key().unwrap().thumbprint(),
        signed_in_key.thumbprint()
    );
    let resumed = second
        .refresh_token_source()
        .store(store.clone())
        .key("ada")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    let current = resumed.token().await.unwrap();
    let refreshed = resumed.token_rejected(&current).await.unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        current.access_token().secret()
    );
    assert_eq!(
        provider
            .dpop_jkt_of(refreshed.access_token().secret())
            .as_deref(),
        Some(signed_in_key.thumbprint()),
        "refreshed with the stored key"
    );
    let resp = client(&provider, resumed).get("me").send().await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", provider.dpop_refusals());

    // The binding is real: the same refresh token with another key is refused.
    let stored = store.load("ada").await.unwrap().unwrap();
    let keyless = stored.clone().with_dpop_key(None);
    let other = second
        .refresh_token_source()
        .from_token(keyless)
        .await
        .unwrap();
    let e = other.token_rejected(&stored).await.unwrap_err();
    assert!(e.is_revoked(), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn older_stored_tokens_without_a_key_still_load() {
    let store = MemoryStore::new();
    let old: Token = serde_json::from_value(serde_json::json!({
        "access_token": "at-old", "token_type": "Bearer", "expires_at": null,
        "received_at": null, "refresh_token": "rt-old"
    }))
    .unwrap();
    store.save("k", &old).await.unwrap();
    let loaded = store.load("k").await.unwrap().unwrap();
    assert!(loaded.dpop_key().is_none());
    assert_eq!(loaded.refresh_token().unwrap().secret(), "rt-old");
}

/// Issue 18 point 4: a resource that answers `use_dpop_nonce` with a fresh nonce every time
/// gets the request twice (one nonce retry per call), not three times, and no refresh.
#[tokio::test]
async fn a_resource_asking_for_a_new_nonce_every_time_gets_two_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};

    let api = MockServer::start().await;
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    Mock::given(path("/api/thing"))
        .respond_with(move |_: &wiremock::Request| {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
                .insert_header("dpop-nonce", format!("nonce-{i}"))
        })
        .mount(&api)
        .await;
    let token = Token::new(authed::AccessToken::new("bound"))
        .with_token_type("DPoP")
        .with_dpop_key(Some(DpopKey::generate(SigningAlgorithm::ES256).unwrap()));
    let client = AuthedClient::builder(StaticToken::from_token(token))
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    let err = client.get("thing").send().await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(u) if u.error.as_deref() == Some("use_dpop_nonce")),
        "{err:?}"
    );
    assert_eq!(n.load(Ordering::SeqCst), 2, "one nonce retry per call");
    // The second request carried the first answer's nonce.
    let seen = api.received_requests().await.unwrap();
    let claims = |r: &wiremock::Request| -> serde_json::Value {
        use base64::Engine as _;
        let part = r.headers["dpop"]
            .to_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert!(claims(&seen[0]).get("nonce").is_none());
    assert_eq!(claims(&seen[1])["nonce"], "nonce-0");
}

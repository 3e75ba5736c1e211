//! Issue 8, played by an attacker: forged and replayed callbacks, a fake authorization server,
//! a second listener standing for "somewhere else", forged ID tokens. Each test asserts the
//! exact typed error and how many requests reached the provider and the other listener.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use authed::testing::{IdTokenForgery, ManualClock, TestProvider};
use authed::{
    AuthedClient, AuthorizationCode, Callback, CallbackError, Error, FileStore, IdTokenError,
    LoopbackReceiver, MemoryStore, OAuthConfig, PendingAuthorization, TokenStore,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Plays the browser at the provider: returns the callback URL it redirects to.
async fn browse(url: &str) -> String {
    let resp = no_redirects().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn state_of(pending: &PendingAuthorization) -> String {
    serde_json::to_value(pending).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn copy(pending: &PendingAuthorization) -> PendingAuthorization {
    serde_json::from_value(serde_json::to_value(pending).unwrap()).unwrap()
}

fn flow(provider: &TestProvider, scopes: &[&str]) -> AuthorizationCode {
    provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(scopes.iter().copied())
        .build()
        .unwrap()
}

/// A store that records the key of every save.
fn recording_store() -> (
    Arc<authed::ObservedStore<MemoryStore>>,
    Arc<Mutex<Vec<String>>>,
) {
    let saved = Arc::new(Mutex::new(Vec::new()));
    let log = saved.clone();
    let store = authed::ObservedStore::new(MemoryStore::new(), move |change| {
        if let authed::StoreChange::Saved { key, .. } = change {
            log.lock().unwrap().push(key.to_owned());
        }
    });
    (Arc::new(store), saved)
}

/// The callback's query with its `code` and `state`, for forging variants of it.
async fn real_callback(flow: &AuthorizationCode) -> (PendingAuthorization, String, String) {
    let pending = flow.authorize();
    let callback = browse(pending.url()).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let state = state_of(&pending);
    (pending, code, state)
}

// ---- Point 1: an authorization code is sent at most once ----------------------------------

#[tokio::test]
async fn point1_a_replayed_completion_sends_nothing_and_a_failed_exchange_is_not_retryable() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider, &[]);
    let (pending, code, state) = real_callback(&flow).await;
    let saved = copy(&pending);
    let callback = Callback::new(&code, &state).iss(provider.issuer());
    flow.complete(pending, &callback).await.unwrap();
    // The session store read twice: the copy is refused, and the code is not sent again.
    let e = flow.complete(saved, &callback).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::AlreadyCompleted)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 1);
    // A clone of the flow shares what was spent.
    let e = flow
        .clone()
        .complete(copy(&flow.authorize()), &Callback::new("x", "y"))
        .await;
    assert!(matches!(
        e,
        Err(Error::Callback(CallbackError::StateMismatch))
    ));

    // A 503 (or a lost answer) from the token endpoint: the code may be spent all the same.
    let (pending, code, state) = real_callback(&flow).await;
    let saved = copy(&pending);
    provider.fail_with(503, "text/plain", "try later");
    let callback = Callback::new(&code, &state).iss(provider.issuer());
    let e = flow.complete(pending, &callback).await.unwrap_err();
    assert!(matches!(e, Error::CodeExchange(_)), "{e:?}");
    assert!(!e.is_retryable());
    assert!(e.requires_reauthorization());
    provider.clear_failure();
    let e = flow.complete(saved, &callback).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::AlreadyCompleted)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 2);
}

// ---- Point 2: RFC 9207 iss, exactly -----------------------------------------------------

#[tokio::test]
async fn point2_an_equivalent_but_different_iss_is_a_mix_up() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider, &[]);
    let issuer = provider.issuer();
    let upper = issuer.replace("http://", "HTTP://");
    for forged in [format!("{issuer}/"), upper, format!("{issuer}:80")] {
        let (pending, code, state) = real_callback(&flow).await;
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &state)
            .append_pair("iss", &forged)
            .finish();
        let e = flow
            .complete(pending, &Callback::from_query(&q))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Callback(CallbackError::IssuerMismatch)),
            "{forged}: {e:?}"
        );
    }
    assert_eq!(provider.token_requests(), 0);
    // Form-decoded first: the exact issuer percent-encoded is the issuer.
    let (pending, code, state) = real_callback(&flow).await;
    let q = format!(
        "code={code}&state={state}&iss={}",
        issuer.replace(':', "%3A").replace('/', "%2F")
    );
    flow.complete(pending, &Callback::from_query(&q))
        .await
        .unwrap();
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn point2_a_callback_without_iss_is_refused_when_discovery_says_the_server_sends_it() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    assert!(config.endpoints().iss_parameter_supported);
    let flow = config.authorization_code(REDIRECT).build().unwrap();
    let (pending, code, state) = real_callback(&flow).await;
    let e = flow
        .complete(pending, &Callback::new(code, state))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::MissingIssuer)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 0);
}

// ---- Point 3: strict callback parsing -----------------------------------------------------

#[tokio::test]
async fn point3_repeated_conflicting_or_huge_callback_parameters_are_refused() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider, &[]);
    let iss = provider.issuer();
    let huge = "c".repeat(100_000);
    type Forge = Box<dyn Fn(&str, &str) -> String>;
    let cases: Vec<(Forge, CallbackError)> = vec![
        (
            Box::new(|c, s| format!("code=attacker&code={c}&state={s}")),
            CallbackError::DuplicateParameter("code"),
        ),
        (
            Box::new(|c, s| format!("code={c}&state={s}&state={s}")),
            CallbackError::DuplicateParameter("state"),
        ),
        (
            Box::new(|c, s| format!("code={c}&state={s}&iss=x&iss=y")),
            CallbackError::DuplicateParameter("iss"),
        ),
        (
            Box::new(|_, s| format!("error=access_denied&error=server_error&state={s}")),
            CallbackError::DuplicateParameter("error"),
        ),
        (
            Box::new(|c, s| format!("code={c}&error=access_denied&state={s}")),
            CallbackError::CodeAndError,
        ),
        (
            Box::new(|_, s| format!("code={}&state={s}", "c".repeat(100_000))),
            CallbackError::TooLong("code"),
        ),
        (
            Box::new(|c, _| format!("code={c}&state={}", "s".repeat(5000))),
            CallbackError::TooLong("state"),
        ),
    ];
    for (make, expected) in cases {
        let (pending, code, state) = real_callback(&flow).await;
        let q = format!("{}&iss={iss}", make(&code, &state));
        let e = flow
            .complete(pending, &Callback::from_query(&q))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Callback(k) if k == expected),
            "{expected:?}: {e:?}"
        );
    }
    // Callback::new is held to the same caps.
    let (pending, _, state) = real_callback(&flow).await;
    let e = flow
        .complete(pending, &Callback::new(huge, state))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Callback(CallbackError::TooLong("code"))));
    assert_eq!(provider.token_requests(), 0);
}

// ---- Point 4: the loopback receiver --------------------------------------------------------

fn public_config(provider: &TestProvider, secret: Option<&str>) -> OAuthConfig {
    let b = OAuthConfig::builder(provider.token_url())
        .authorization_url(provider.authorization_url())
        .issuer(provider.issuer())
        .jwks_url(provider.jwks_url());
    match secret {
        Some(s) => b.client_id(TestProvider::CLIENT_ID).client_secret(s),
        None => b
            .client_id(TestProvider::PUBLIC_CLIENT_ID)
            .auth_method(authed::ClientAuthMethod::None),
    }
    .build()
    .unwrap()
}

#[tokio::test]
async fn point4_the_loopback_receiver_takes_only_a_get_for_its_own_host_and_tells_the_truth() {
    let provider = TestProvider::start().await;
    // A wrong client secret: the exchange will fail.
    let config = public_config(&provider, Some("wrong-secret"));
    let receiver = LoopbackReceiver::builder()
        .open_browser(false)
        .timeout(Duration::from_secs(60))
        .bind()
        .await
        .unwrap();
    let redirect_uri = receiver.redirect_uri().to_owned();
    let host = redirect_uri
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let port = host.rsplit(':').next().unwrap().to_owned();
    let flow = config.authorization_code(&redirect_uri).build().unwrap();
    let pending = flow.authorize();
    let url = pending.url().to_owned();
    let state = state_of(&pending);
    let signing_in = {
        let flow = flow.clone();
        tokio::spawn(async move { receiver.finish_sign_in(&flow, pending).await })
    };
    let http = no_redirects();
    // Login CSRF: another local process or a web page POSTs the attacker's code with the
    // right state.
    let post = http
        .post(format!("{redirect_uri}?code=attacker&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let post_form = http
        .post(&redirect_uri)
        .form(&[("code", "attacker"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(post_form.status(), 405);
    // DNS rebinding: a GET that names another host, or `localhost` instead of the literal.
    for bad_host in [
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let resp = http
            .get(format!("{redirect_uri}?code=attacker&state={state}"))
            .header("host", bad_host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad_host}");
    }
    assert!(!signing_in.is_finished());
    assert_eq!(provider.token_requests(), 0);

    // The real callback: the exchange fails, and the page says so.
    let callback = browse(&url).await;
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("Sign-in failed"), "{body}");
    assert!(!body.contains("Signed in"), "{body}");
    assert!(
        !body.contains("http"),
        "no link or resource on the page: {body}"
    );
    let e = signing_in.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
    assert_eq!(provider.token_requests(), 1);
    assert!(
        provider.token_forms()[0]["code"].starts_with("code-"),
        "the provider's code, not the attacker's"
    );
}

// ---- Point 5: every URL handed to a browser or a user is validated -------------------------

#[tokio::test]
async fn point5_device_flow_urls_that_are_not_https_are_refused() {
    for (uri, complete) in [
        ("file:///etc/passwd", None),
        ("javascript:alert(1)", None),
        ("-e https://evil.example", None),
        ("http://evil.example/device", None),
        ("https://auth.example/device", Some("javascript:alert(1)")),
        (
            "https://auth.example/device",
            Some("--new-window https://x"),
        ),
    ] {
        let server = MockServer::start().await;
        let mut body = json!({
            "device_code": "dc", "user_code": "UC", "verification_uri": uri, "expires_in": 600,
        });
        if let Some(c) = complete {
            body["verification_uri_complete"] = json!(c);
        }
        Mock::given(method("POST"))
            .and(path("/device"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let device = OAuthConfig::builder(format!("{}/token", server.uri()))
            .device_authorization_url(format!("{}/device", server.uri()))
            .client_id("tv")
            .build()
            .unwrap()
            .device_authorization()
            .build()
            .unwrap();
        let e = device.start().await.unwrap_err();
        assert!(
            matches!(&e, Error::MalformedResponse { status: 200, .. }),
            "{uri} {complete:?}: {e:?}"
        );
        assert!(
            !e.to_string().contains(uri) || uri.starts_with("https"),
            "{e}"
        );
        // One device authorization request, no poll.
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
    // The authorization URL goes through the same check.
    let e = OAuthConfig::builder("https://auth.example/token")
        .authorization_url("https://user:pw@auth.example/authorize")
        .client_id("app")
        .build()
        .unwrap()
        .authorization_code("https://app.example/cb")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

// ---- Point 6: HTTPS everywhere; each danger_* opt-out warns once ---------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn warnings(capture: &Capture) -> Vec<String> {
    String::from_utf8(capture.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn point6_a_plain_http_redirect_uri_is_refused_and_each_opt_out_warns_once() {
    let config = OAuthConfig::builder("https://auth.example/token")
        .authorization_url("https://auth.example/authorize")
        .client_id("web")
        .build()
        .unwrap();
    for bad in ["http://app.example.com/callback", "javascript:alert(1)"] {
        let e = config.authorization_code(bad).build().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e:?}");
    }
    for ok in [
        "https://app.example.com/callback",
        "http://127.0.0.1:8080/cb",
        "http://[::1]/cb",
        "com.example.app:/oauth2redirect",
    ] {
        config.authorization_code(ok).build().unwrap();
    }

    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Set but not taking effect (every endpoint is https): no warning.
    OAuthConfig::builder("https://auth.example/token")
        .client_id("svc")
        .danger_allow_insecure_http()
        .build()
        .unwrap();
    assert_eq!(warnings(&capture).len(), 0);
    OAuthConfig::builder("http://auth.lan/token")
        .revocation_url("http://auth.lan/revoke")
        .client_id("svc")
        .danger_allow_insecure_http()
        .build()
        .unwrap();
    let w = warnings(&capture);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("danger_allow_insecure_http"), "{w:?}");
    let source = authed::StaticToken::new("t");
    AuthedClient::builder(source.clone())
        .danger_allow_any_https_origin()
        .build()
        .unwrap();
    let w = warnings(&capture);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[1].contains("danger_allow_any_https_origin"), "{w:?}");
    AuthedClient::builder(source)
        .base_url("http://api.lan/")
        .danger_allow_insecure_http()
        .build()
        .unwrap();
    let w = warnings(&capture);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[2].contains("danger_allow_insecure_http"), "{w:?}");
}

// ---- Point 9: the ID token is validated whenever a nonce is sent ---------------------------

async fn openid_login(
    provider: &TestProvider,
    flow: &AuthorizationCode,
) -> Result<authed::RefreshTokenSource, Error> {
    let (pending, code, state) = real_callback(flow).await;
    flow.complete(pending, &Callback::new(code, state).iss(provider.issuer()))
        .await
}

#[tokio::test]
async fn point9_every_kind_of_bad_id_token_is_refused_and_nothing_is_stored() {
    let provider = TestProvider::start().await;
    let (store, saved) = recording_store();
    // A clock that does not move: every forged kid falls within the JWKS refetch interval.
    let clock = ManualClock::new(SystemTime::now());
    let flow = provider
        .config(Some(clock))
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .store(store.clone())
        .build()
        .unwrap();
    let cases = [
        (IdTokenForgery::Missing, IdTokenError::Missing),
        (IdTokenForgery::AlgNone, IdTokenError::AlgorithmNotAllowed),
        (
            IdTokenForgery::HmacWithPublicKey,
            IdTokenError::AlgorithmNotAllowed,
        ),
        (IdTokenForgery::WrongSignature, IdTokenError::BadSignature),
        (IdTokenForgery::UnknownKey, IdTokenError::UnknownKey),
        (IdTokenForgery::WrongIssuer, IdTokenError::Issuer),
        (IdTokenForgery::WrongAudience, IdTokenError::Audience),
        (
            IdTokenForgery::MultipleAudiencesWithoutAzp,
            IdTokenError::Audience,
        ),
        (IdTokenForgery::WrongAzp, IdTokenError::Audience),
        (IdTokenForgery::Expired, IdTokenError::Expired),
        (IdTokenForgery::IssuedInFuture, IdTokenError::IssuedInFuture),
        (IdTokenForgery::WrongNonce, IdTokenError::Nonce),
        (IdTokenForgery::NoNonce, IdTokenError::Nonce),
    ];
    for (i, (forgery, expected)) in cases.into_iter().enumerate() {
        provider.set_id_token_forgery(Some(forgery));
        let e = openid_login(&provider, &flow).await.unwrap_err();
        assert!(
            matches!(e, Error::IdToken(k) if k == expected),
            "{forgery:?}: {e:?}"
        );
        assert!(e.requires_reauthorization());
        assert_eq!(provider.token_requests(), i + 1);
    }
    // One JWKS fetch: forged kids within the refetch interval do not reach the provider.
    assert_eq!(provider.jwks_requests(), 1);
    assert!(saved.lock().unwrap().is_empty());
}

#[tokio::test]
async fn point9_good_id_tokens_of_each_algorithm_are_accepted_and_their_claims_exposed() {
    let provider = TestProvider::start().await;
    for alg in ["EdDSA", "ES256", "RS256", "PS256"] {
        provider.set_id_token_algorithm(alg);
        // A new flow: its own key cache.
        let flow = flow(&provider, &["openid", "email"]);
        let login = openid_login(&provider, &flow).await.unwrap();
        let claims = login.id_token_claims().unwrap();
        assert_eq!(claims.sub(), "user-1", "{alg}");
        assert_eq!(claims.email(), Some("user-1@example.com"));
        assert_eq!(claims.name(), Some("Test User user-1"));
        assert_eq!(claims.get("aud"), Some(&json!(TestProvider::CLIENT_ID)));
    }
    assert_eq!(provider.jwks_requests(), 4);
}

#[tokio::test]
async fn point9_a_rotated_key_is_fetched_again_but_unknown_kids_only_within_a_limit() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let flow = provider
        .config(Some(clock.clone()))
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap();
    openid_login(&provider, &flow).await.unwrap();
    assert_eq!(provider.jwks_requests(), 1);
    provider.rotate_signing_key();
    clock.advance(Duration::from_secs(11));
    openid_login(&provider, &flow).await.unwrap();
    assert_eq!(provider.jwks_requests(), 2);
    // A forger's unknown kid right after: refused without another fetch.
    provider.set_id_token_forgery(Some(IdTokenForgery::UnknownKey));
    let e = openid_login(&provider, &flow).await.unwrap_err();
    assert!(
        matches!(e, Error::IdToken(IdTokenError::UnknownKey)),
        "{e:?}"
    );
    assert_eq!(provider.jwks_requests(), 2);
}

// ---- Point 10: logins never mix ------------------------------------------------------------

#[tokio::test]
async fn point10_two_users_and_two_scopes_never_share_a_stored_login() {
    let provider = TestProvider::start().await;
    let (store, saved) = recording_store();
    let flow_for = |scopes: &[&str]| {
        provider
            .config(None)
            .authorization_code(REDIRECT)
            .scopes(scopes.iter().copied())
            .store(store.clone())
            .build()
            .unwrap()
    };
    let openid = flow_for(&["openid"]);
    provider.set_subject("alice");
    let alice = openid_login(&provider, &openid).await.unwrap();
    provider.set_subject("bob");
    let bob = openid_login(&provider, &openid).await.unwrap();
    assert_ne!(alice.key(), bob.key());
    let stored_alice = store.load(alice.key()).await.unwrap().unwrap();
    let stored_bob = store.load(bob.key()).await.unwrap().unwrap();
    assert_eq!(
        stored_alice.access_token(),
        alice.current().unwrap().access_token()
    );
    assert_eq!(
        stored_bob.access_token(),
        bob.current().unwrap().access_token()
    );
    assert_ne!(stored_alice.access_token(), stored_bob.access_token());

    // Scopes shape the token: a `read` login is never served the `admin` one.
    let read = openid_login(&provider, &flow_for(&["read"])).await.unwrap();
    let admin = openid_login(&provider, &flow_for(&["admin"]))
        .await
        .unwrap();
    assert_ne!(read.key(), admin.key());
    let resumed = provider
        .config(None)
        .refresh_token_source()
        .store(store.clone())
        .key(read.key())
        .from_store()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resumed.current().unwrap().access_token(),
        read.current().unwrap().access_token()
    );
    let mut keys = saved.lock().unwrap().clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "{keys:?}");

    // The app's own key, given at completion.
    let (pending, code, state) = real_callback(&openid).await;
    let carol = openid
        .complete_as(
            pending,
            &Callback::new(code, state).iss(provider.issuer()),
            "user:carol",
        )
        .await
        .unwrap();
    assert_eq!(carol.key(), "user:carol");
    assert_eq!(provider.token_requests(), 5);
}

// ---- Point 11: no error carries stored or received content ----------------------------------

#[tokio::test]
async fn point11_an_unreadable_file_store_does_not_quote_its_content() {
    let dir = std::env::temp_dir().join(format!("authed-p11-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens.json");
    for content in [
        r#"{"version": "rt-SECRET-refresh-token", "tokens": {}}"#,
        r#"{"version": 1, "tokens": {"k": {"access_token": "at-SECRET-access", "refresh_token": 7}}}"#,
        "rt-SECRET-refresh-token",
    ] {
        std::fs::write(&file, content).unwrap();
        let e = FileStore::new(&file).load("k").await.unwrap_err();
        let shown = format!("{e} / {:?} / {}", e, std::error::Error::source(&e).unwrap());
        assert!(matches!(e, Error::Store(_)));
        assert!(!shown.contains("SECRET"), "{shown}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn point9_the_jwks_is_fetched_by_the_endpoint_client_which_follows_no_redirect() {
    let provider = TestProvider::start().await;
    let jwks = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/jwks", elsewhere.uri()).as_str()),
        )
        .mount(&jwks)
        .await;
    let flow = OAuthConfig::builder(provider.token_url())
        .authorization_url(provider.authorization_url())
        .issuer(provider.issuer())
        .jwks_url(format!("{}/jwks", jwks.uri()))
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap()
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap();
    let e = openid_login(&provider, &flow).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::Jwks)), "{e:?}");
    assert_eq!(jwks.received_requests().await.unwrap().len(), 1);
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
    assert_eq!(provider.token_requests(), 1);
}

//! Every sign-in flow, refresh, failure and logout with tracing captured at TRACE: no code,
//! verifier, state, nonce, token, device code or client secret appears in any line, span
//! fields included.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{Callback, LoopbackReceiver, MemoryStore, TokenSource, TokenStore};

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

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        // A line when each span closes, with every field recorded on it.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    let store = Arc::new(MemoryStore::new());
    let mut secrets = vec![TestProvider::CLIENT_SECRET.to_owned()];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Authorization code through the loopback receiver, with a stray and a stale request.
    let receiver = LoopbackReceiver::builder()
        .open_browser(false)
        .bind()
        .await
        .unwrap();
    let redirect_uri = receiver.redirect_uri().to_owned();
    let flow = config
        .authorization_code(&redirect_uri)
        .scopes(["openid"])
        .store(store.clone())
        .build()
        .unwrap();
    let pending = flow.authorize();
    let p = serde_json::to_value(&pending).unwrap();
    for k in ["state", "verifier", "nonce"] {
        secrets.push(p[k].as_str().unwrap().to_owned());
    }
    let copy = || serde_json::from_value::<authed::PendingAuthorization>(p.clone()).unwrap();
    let waiting = {
        let pending = copy();
        tokio::spawn(async move { receiver.receive(&pending).await })
    };
    let location = http.get(pending.url()).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let code: String = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into();
    secrets.push(code);
    let _ = http
        .get(format!(
            "{redirect_uri}?code=stale-code-123&state=stale-state-456"
        ))
        .send()
        .await;
    secrets.extend(["stale-code-123".to_owned(), "stale-state-456".to_owned()]);
    http.get(&location).send().await.unwrap();
    let callback = waiting.await.unwrap().unwrap();
    let login = flow.complete(copy(), &callback).await.unwrap();
    secrets.push(
        login
            .current()
            .unwrap()
            .id_token()
            .unwrap()
            .secret()
            .to_owned(),
    );

    // Refreshes, including one in the background.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(3600));
        login.token().await.unwrap();
    }
    clock.advance(Duration::from_secs(3600 - 200));
    login.token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Failures: a replayed code, a wrong state, a revoked refresh token.
    let _ = flow.complete(copy(), &callback).await.unwrap_err();
    let _ = flow
        .complete(copy(), &Callback::new("some-code-789", "wrong-state-012"))
        .await
        .unwrap_err();
    secrets.extend(["some-code-789".to_owned(), "wrong-state-012".to_owned()]);
    let spent = provider.issue_refresh_token();
    config
        .revoke_refresh_token(&authed::RefreshToken::new(spent.clone()))
        .await
        .unwrap();
    let revoked = config
        .refresh_token_source()
        .from_token(
            authed::Token::new(authed::AccessToken::new("expired-at-345"))
                .with_expires_at(Some(SystemTime::UNIX_EPOCH))
                .with_refresh_token(Some(authed::RefreshToken::new(spent))),
        )
        .await
        .unwrap();
    let _ = revoked.token().await.unwrap_err();
    secrets.push("expired-at-345".to_owned());

    // Device flow.
    provider.set_device_interval(Some(1));
    provider.set_device_script(["authorization_pending"]);
    let device = config.device_authorization().build().unwrap();
    let device_code = device.start().await.unwrap();
    secrets.push(device_code.user_code().to_owned());
    let device_login = device.poll(&device_code).await.unwrap();
    let _ = device_login.logout().await.unwrap();

    // Logout.
    let last = store.load(login.key()).await.unwrap().unwrap();
    let _ = login.logout().await.unwrap();
    secrets.push(last.access_token().secret().to_owned());

    // Everything the provider saw or issued.
    for form in provider.token_forms() {
        for k in [
            "code",
            "code_verifier",
            "refresh_token",
            "device_code",
            "client_secret",
        ] {
            if let Some(v) = form.get(k) {
                secrets.push(v.clone());
            }
        }
    }
    for (token, _) in provider.revocations() {
        secrets.push(token);
    }
    drop(_guard);

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("oauth request"),
        "nothing was captured:\n{log}"
    );
    for span in [
        "provider_request",
        "token_wait",
        r#"grant="revocation""#,
        r#"grant="device_code""#,
        // OpenTelemetry HTTP client spans, one per request sent.
        "POST{",
        "GET{",
        r#"otel.kind="client""#,
        r#"http.request.method="POST""#,
        r#"http.request.method="GET""#,
        "url.full=http://127.0.0.1:",
    ] {
        assert!(log.contains(span), "no {span}:\n{log}");
    }
    // A URL in a span field is never more than origin and path.
    for url in log.split("url.full=").skip(1) {
        let url = url
            .split([' ', '}', ':'])
            .take(3)
            .collect::<Vec<_>>()
            .join(":");
        assert!(!url.contains(['?', '#', '@']), "{url}");
    }
    assert!(log.lines().count() > 20, "{log}");
    let secrets: Vec<_> = secrets.into_iter().filter(|s| s.len() >= 6).collect();
    assert!(
        secrets.len() > 25,
        "only {} secrets collected",
        secrets.len()
    );
    for secret in &secrets {
        for line in log.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret appears in a log line:\n{line}"
            );
        }
    }
    eprintln!(
        "checked {} secrets against {} log lines",
        secrets.len(),
        log.lines().count()
    );
}

/// The JWT flows: private keys, client secrets of `client_secret_jwt`, client assertions,
/// grant assertions and subject tokens appear in no log line, `Debug`, `Display` or error.
#[tokio::test]
async fn no_key_or_assertion_reaches_a_log_line_or_debug() {
    use authed::providers::GoogleServiceAccount;
    use authed::{ClientAuthMethod, OAuthConfig, SigningKey, SubjectToken};

    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let keys = format!("{}/tests/support/keys", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(format!("{keys}/rsa_pkcs8.pem")).unwrap();
    let jwk = std::fs::read_to_string(format!("{keys}/ec_pkcs8.jwk.json")).unwrap();
    let jwk_value: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    // Every line of the PEM body and the JWK's private parts are secrets.
    let mut secrets: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    secrets.push(jwk_value["d"].as_str().unwrap().to_owned());
    let rsa_jwk: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{keys}/rsa_pkcs8.jwk.json")).unwrap(),
    )
    .unwrap();
    for k in ["d", "p", "q", "dp", "dq", "qi"] {
        secrets.push(rsa_jwk[k].as_str().unwrap().to_owned());
    }
    let mut shown = Vec::new();

    let provider = TestProvider::start().await;
    let rsa = SigningKey::from_pem(pem.as_bytes()).unwrap().with_kid("k1");
    let ec = SigningKey::from_jwk(&jwk).unwrap();
    provider.register_client_key("jwt-client", rsa.public_jwk());
    provider.register_client_key("robot@example.com", ec.public_jwk());

    // private_key_jwt, and a wrong key.
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .revocation_url(provider.revocation_url())
        .client_id("jwt-client")
        .private_key(rsa.clone())
        .build()
        .unwrap();
    let source = config.client_credentials().build();
    let token = source.token().await.unwrap();
    config
        .revoke_access_token(token.access_token())
        .await
        .unwrap();
    let wrong = OAuthConfig::builder(provider.token_url())
        .client_id("jwt-client")
        .private_key(ec.clone().with_kid("k1"))
        .build()
        .unwrap();
    let err = wrong
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    shown.push(format!("{err} {err:?}"));

    // client_secret_jwt.
    let hs = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    hs.client_credentials().build().token().await.unwrap();
    secrets.push(TestProvider::CLIENT_SECRET.to_owned());

    // JWT bearer grant and a service account.
    let bearer = OAuthConfig::builder(provider.token_url())
        .client_id("")
        .build()
        .unwrap();
    let grant = bearer
        .jwt_bearer(ec.clone())
        .issuer("robot@example.com")
        .scopes(["s"])
        .build();
    grant.token().await.unwrap();
    let key_file = serde_json::json!({
        "type": "service_account",
        "client_email": "robot@example.com",
        "private_key": std::fs::read_to_string(format!("{keys}/ec_pkcs8.pem")).unwrap(),
        "private_key_id": "sa-key",
        "token_uri": provider.token_url(),
    })
    .to_string();
    let account = GoogleServiceAccount::from_json(&key_file).unwrap();
    let sa_config = account.config().build().unwrap();
    let sa = account.id_tokens(&sa_config, "https://run.example").build();
    let sa_token = sa.token().await.unwrap();
    for line in std::fs::read_to_string(format!("{keys}/ec_pkcs8.pem"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        secrets.push(line.to_owned());
    }

    // Token exchange from a file.
    let dir = std::env::temp_dir().join(format!("authed-no-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("subject"), "subject-token-from-file-123").unwrap();
    secrets.push("subject-token-from-file-123".to_owned());
    let exchange = hs
        .token_exchange(SubjectToken::file(dir.join("subject")))
        .actor_token(SubjectToken::fixed("actor-token-456789"))
        .build();
    let exchanged = exchange.token().await.unwrap();
    secrets.push("actor-token-456789".to_owned());

    for t in [&token, &sa_token, &exchanged] {
        secrets.push(t.access_token().secret().to_owned());
    }
    for form in provider.token_forms() {
        for k in [
            "client_assertion",
            "assertion",
            "subject_token",
            "actor_token",
        ] {
            if let Some(v) = form.get(k) {
                secrets.push(v.clone());
                // The signature alone is secret enough to look for.
                secrets.push(v.rsplit('.').next().unwrap().to_owned());
            }
        }
    }
    shown.push(format!(
        "{rsa:?} {ec:?} {config:?} {wrong:?} {hs:?} {source:?} {grant:?} {account:?} {sa:?} \
         {exchange:?} {bearer:?}"
    ));
    drop(_guard);

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("oauth request"), "nothing was captured");
    let secrets: Vec<_> = secrets.into_iter().filter(|s| s.len() >= 6).collect();
    assert!(secrets.len() > 40, "only {} secrets", secrets.len());
    for secret in &secrets {
        for line in log.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret appears in a log line:\n{line}"
            );
        }
        for s in &shown {
            assert!(
                !s.contains(secret.as_str()),
                "a secret in Debug/Display: {s}"
            );
        }
    }
}

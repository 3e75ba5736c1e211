//! Secrets and tokens appear in no `Debug`, `Display`, error message, or `tracing` output at
//! TRACE level, across fetches, refreshes, retries and failures.

use std::io::Write;
use std::sync::{Arc, Mutex};

use authed::testing::TestProvider;
use authed::{AuthedClient, OAuthConfig, TokenSource};
use base64::Engine as _;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_debug_display_errors_or_trace_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let provider = TestProvider::start().await;
    provider.set_refresh_tokens_for_client_credentials(true);
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    let source = Arc::new(config.client_credentials().scopes(["read"]).build());
    let client = AuthedClient::builder(source.clone())
        .base_url(provider.api_url())
        .build()
        .unwrap();

    let mut secrets = vec![TestProvider::CLIENT_SECRET.to_owned()];
    let mut shown = Vec::new();

    client.get("one").send().await.unwrap();
    let first = source.token().await.unwrap();
    provider.revoke_access_tokens();
    client.get("two").send().await.unwrap(); // 401, refresh, retry
    let second = source.token().await.unwrap();
    for t in [&first, &second] {
        secrets.push(t.access_token().secret().to_owned());
        secrets.push(t.refresh_token().unwrap().secret().to_owned());
        shown.push(format!(
            "{t:?} {:?} {:?}",
            t.access_token(),
            t.refresh_token()
        ));
    }

    let wrong = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("wrong-secret-value")
        .build()
        .unwrap();
    secrets.push("wrong-secret-value".to_owned());
    let err = wrong
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    shown.push(format!("{err} {err:?}"));

    provider.fail_with(502, "text/html", "<h1>bad gateway</h1>");
    let err = config
        .client_credentials()
        .scopes(["other"])
        .build()
        .token()
        .await
        .unwrap_err();
    shown.push(format!("{err} {err:?}"));
    provider.clear_failure();

    shown.push(format!("{config:?} {source:?} {client:?} {wrong:?}"));

    // DPoP: the private key and the proofs, through the nonce dance at both endpoints.
    provider.set_dpop_nonce_required(true);
    let dpop = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .dpop(authed::SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let key = dpop.dpop_key().unwrap().clone();
    let der = key.to_pkcs8_der().unwrap();
    secrets.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der));
    secrets.push(base64::engine::general_purpose::STANDARD.encode(&der));
    let dpop_source = Arc::new(dpop.client_credentials().build());
    let dpop_client = AuthedClient::builder(dpop_source.clone())
        .base_url(provider.api_url())
        .build()
        .unwrap();
    dpop_client.get("one").send().await.unwrap();
    secrets.push(provider.last_dpop_proof().unwrap());
    provider.rotate_dpop_nonce();
    dpop_client.get("two").send().await.unwrap(); // 401 use_dpop_nonce, retry
    secrets.push(provider.last_dpop_proof().unwrap());
    let bound = dpop_source.token().await.unwrap();
    secrets.push(bound.access_token().secret().to_owned());
    assert!(provider.dpop_nonce_challenges() >= 2);
    shown.push(format!(
        "{dpop:?} {dpop_source:?} {dpop_client:?} {bound:?} {key:?}"
    ));
    // Introspection: the token goes in the request body only.
    let introspecting = OAuthConfig::builder(provider.token_url())
        .introspection_url(provider.introspection_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    let info = introspecting
        .introspect_access_token(second.access_token())
        .await
        .unwrap();
    assert!(info.is_active());
    shown.push(format!("{info:?} {introspecting:?}"));

    // A client certificate's key: in no builder, configuration or error.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key_pem = key.serialize_pem();
    secrets.extend(
        key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    let with_cert = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .auth_method(authed::ClientAuthMethod::TlsClientAuth)
        .client_certificate(cert.pem(), &key_pem);
    shown.push(format!("{with_cert:?}"));
    let with_cert = with_cert.build().unwrap();
    shown.push(format!("{with_cert:?}"));
    let mismatched = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_certificate("not a certificate", &key_pem)
        .build()
        .unwrap_err();
    shown.push(format!("{mismatched} {mismatched:?}"));

    // Basic credentials, as they cross the wire.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        TestProvider::CLIENT_ID,
        TestProvider::CLIENT_SECRET
    ));
    secrets.push(basic);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("oauth request"),
        "TRACE capture works: {logs}"
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        for s in &shown {
            assert!(
                !s.contains(secret.as_str()),
                "a secret reached Debug/Display: {s}"
            );
        }
    }
}

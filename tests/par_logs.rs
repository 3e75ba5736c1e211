//! A pushed authorization request (RFC 9126) traced at TRACE logs no secret. Alone in its
//! test binary: no other test's thread reaches the crate's callsites while this test's
//! subscriber is installed, which made the span's presence depend on test timing.

use authed::ClientAuthMethod;
use authed::testing::{Browsed, TestProvider};

#[path = "support/par_setup.rs"]
#[allow(dead_code)]
mod par_setup;
use par_setup::{REDIRECT, config, query};

#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_pushed_sign_in_logs_no_secret_request_uri_state_or_code() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let provider = TestProvider::start().await;
    let config = config(&provider, ClientAuthMethod::ClientSecretPost);
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .pushed(true)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let request_uri = query(pending.url())["request_uri"].clone();
    let callback_url = match provider.browse(pending.url()).await {
        Browsed::Redirect(url) => url,
        other => panic!("{other:?}"),
    };
    let callback = query(&callback_url);
    let pushed = provider.pushed_requests().remove(0);
    flow.complete(pending, &authed::Callback::from_url(&callback_url).unwrap())
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("pushed_authorization"),
        "the PAR call has its span"
    );
    for secret in [
        TestProvider::CLIENT_SECRET,
        request_uri.as_str(),
        pushed["state"].as_str(),
        pushed["nonce"].as_str(),
        pushed["code_challenge"].as_str(),
        callback["code"].as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
}

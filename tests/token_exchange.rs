//! The token exchange grant (RFC 8693) against the in-process provider: a subject token from
//! a file re-read at each exchange (the Kubernetes and CI shape), from another source, with an
//! actor token, and `token_type: N_A`.

use std::sync::Arc;
use std::time::Duration;

use std::time::UNIX_EPOCH;

use authed::testing::{ManualClock, TestProvider};
use authed::{Error, OAuthConfig, StaticToken, SubjectToken, TokenSource, token_types};

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "authed-token-exchange-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(provider: &TestProvider) -> OAuthConfig {
    OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_file_that_changes_gives_a_new_subject_token_at_the_next_exchange() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let dir = tempdir();
    let path = dir.join("token");
    std::fs::write(&path, "k8s-token-1\n").unwrap();
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .clock(clock.clone())
        .build()
        .unwrap();
    let source = config
        .token_exchange(SubjectToken::file(&path))
        .audience("https://api.example.com")
        .resource("https://api.example.com/v1")
        .requested_token_type(token_types::ACCESS_TOKEN)
        .scopes(["read"])
        .build();
    let first = source.token().await.unwrap();
    // The platform rotates the token (same length, new content), and the exchanged token
    // expires.
    std::fs::write(&path, "k8s-token-2\n").unwrap();
    clock.advance(Duration::from_secs(3600));
    let second = source.token().await.unwrap();
    assert_ne!(
        first.access_token().secret(),
        second.access_token().secret()
    );

    let forms = provider.token_forms();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0]["subject_token"], "k8s-token-1");
    assert_eq!(forms[1]["subject_token"], "k8s-token-2");
    for form in &forms {
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth:grant-type:token-exchange"
        );
        assert_eq!(form["subject_token_type"], token_types::JWT);
        assert_eq!(form["audience"], "https://api.example.com");
        assert_eq!(form["resource"], "https://api.example.com/v1");
        assert_eq!(form["requested_token_type"], token_types::ACCESS_TOKEN);
        assert_eq!(form["scope"], "read");
    }
    assert_eq!(
        second.extra()["issued_token_type"],
        token_types::ACCESS_TOKEN
    );
}

#[tokio::test]
async fn the_issued_token_is_cached() {
    let provider = TestProvider::start().await;
    let source = config(&provider)
        .token_exchange(SubjectToken::fixed("user-access-token"))
        .build();
    source.token().await.unwrap();
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 1);
    assert_eq!(
        provider.token_forms()[0]["subject_token_type"],
        token_types::ACCESS_TOKEN
    );
}

#[tokio::test]
async fn the_subject_can_be_another_source_and_an_actor_can_be_named() {
    let provider = TestProvider::start().await;
    let config = config(&provider);
    let user = Arc::new(config.client_credentials().scopes(["user"]).build());
    let actor = StaticToken::new("actor-jwt");
    let source = config
        .token_exchange(SubjectToken::source(user.clone()))
        .actor_token(SubjectToken::source(Arc::new(actor)).token_type(token_types::JWT))
        .build();
    source.token().await.unwrap();
    let forms = provider.token_forms();
    // One client credentials request for the subject, then the exchange.
    assert_eq!(forms.len(), 2);
    let exchange = &forms[1];
    assert_eq!(
        exchange["subject_token"],
        user.token().await.unwrap().access_token().secret()
    );
    assert_eq!(exchange["actor_token"], "actor-jwt");
    assert_eq!(exchange["actor_token_type"], token_types::JWT);
}

#[tokio::test]
async fn a_missing_or_empty_file_is_a_configuration_error() {
    let provider = TestProvider::start().await;
    let dir = tempdir();
    let missing = config(&provider)
        .token_exchange(SubjectToken::file(dir.join("absent")))
        .build();
    let e = missing.token().await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    std::fs::write(dir.join("empty"), "  \n").unwrap();
    let empty = config(&provider)
        .token_exchange(SubjectToken::file(dir.join("empty")))
        .build();
    assert!(matches!(empty.token().await.unwrap_err(), Error::Config(_)));
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test]
async fn token_type_n_a_is_accepted_only_for_a_requested_non_access_token() {
    let provider = TestProvider::start().await;
    provider.set_token_exchange_token_type("N_A");
    let jwt = config(&provider)
        .token_exchange(SubjectToken::fixed("subject"))
        .requested_token_type(token_types::JWT)
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(jwt.token_type(), "N_A");
    assert_eq!(jwt.extra()["issued_token_type"], token_types::JWT);

    let e = config(&provider)
        .token_exchange(SubjectToken::fixed("subject"))
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnsupportedTokenType { .. }), "{e:?}");
}

#[tokio::test]
async fn an_sts_without_client_authentication() {
    let provider = TestProvider::start().await;
    let sts = OAuthConfig::builder(provider.token_url())
        .client_id("")
        .build()
        .unwrap();
    let dir = tempdir();
    std::fs::write(dir.join("oidc"), "github-oidc-jwt").unwrap();
    sts.token_exchange(SubjectToken::file(dir.join("oidc")))
        .audience(
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh",
        )
        .build()
        .token()
        .await
        .unwrap();
    let form = &provider.token_forms()[0];
    assert!(!form.contains_key("client_id"));
    assert_eq!(form["subject_token"], "github-oidc-jwt");
}

#[tokio::test]
async fn debug_shows_no_subject_token() {
    let subject = SubjectToken::fixed("very-secret-subject");
    assert!(!format!("{subject:?}").contains("very-secret-subject"));
}

// Issue 18 point 5, played by a non-conforming STS: RFC 8693 §2.2.1 makes `issued_token_type`
// REQUIRED in a successful answer. An answer without it is refused with a typed error, and
// nothing is cached: the next call asks again.
#[tokio::test]
async fn an_answer_without_issued_token_type_is_refused_and_not_cached() {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let sts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("token-exchange"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "exchanged", "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&sts)
        .await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let source = OAuthConfig::builder(format!("{}/token", sts.uri()))
        .client_id("")
        .clock(clock.clone())
        .build()
        .unwrap()
        .token_exchange(SubjectToken::fixed("subject"))
        .build();
    for sent in 1..=2 {
        // Past the cache's backoff after a failure: a cached token would now be served.
        clock.advance(Duration::from_secs(120));
        let e = source.token().await.unwrap_err();
        assert!(
            matches!(&e, Error::MalformedResponse { status: 200, reason } if reason.contains("issued_token_type")),
            "{e:?}"
        );
        assert!(!e.is_retryable());
        assert_eq!(sts.received_requests().await.unwrap().len(), sent);
    }
}

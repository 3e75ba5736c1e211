//! The JWT bearer grant (RFC 7523 §2.1) and Google service account keys, end to end against
//! the in-process provider, which verifies each assertion's signature, audience and expiry.

use std::time::Duration;

use authed::providers::GoogleServiceAccount;
use authed::testing::TestProvider;
use authed::{Env, Error, OAuthConfig, SigningKey, TokenSource};
use base64::Engine as _;
use serde_json::{Map, Value, json};

const EMAIL: &str = "robot@project.iam.gserviceaccount.com";

fn keys_dir() -> String {
    format!("{}/tests/support/keys", env!("CARGO_MANIFEST_DIR"))
}

/// A service account key file as Google writes it, for `provider`'s token endpoint.
fn key_file(provider: &TestProvider) -> String {
    let pem = std::fs::read_to_string(format!("{}/rsa_pkcs8.pem", keys_dir())).unwrap();
    json!({
        "type": "service_account",
        "project_id": "project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "104",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": provider.token_url(),
    })
    .to_string()
}

async fn provider() -> TestProvider {
    let provider = TestProvider::start().await;
    let pem = std::fs::read(format!("{}/rsa_pkcs8.pem", keys_dir())).unwrap();
    let public = SigningKey::from_pem(&pem)
        .unwrap()
        .with_kid("0123456789abcdef")
        .public_jwk()
        .clone();
    provider.register_client_key(EMAIL, public);
    provider
}

fn header_of(jwt: &str) -> Map<String, Value> {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_service_account_key_file_gets_access_tokens() {
    let provider = provider().await;
    let dir = tempdir();
    let path = dir.join("key.json");
    std::fs::write(&path, key_file(&provider)).unwrap();

    let account = GoogleServiceAccount::from_file(&path).unwrap();
    assert_eq!(account.client_email(), EMAIL);
    assert_eq!(account.project_id(), Some("project"));
    let config = account.config().build().unwrap();
    let source = account
        .access_tokens(&config, ["https://www.googleapis.com/auth/cloud-platform"])
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(
        token.scopes(),
        Some(&["https://www.googleapis.com/auth/cloud-platform".to_owned()][..])
    );
    // Cached: a second call makes no request.
    source.token().await.unwrap();
    assert_eq!(provider.token_requests(), 1);

    let form = &provider.token_forms()[0];
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    // No client authentication, no client id: the assertion is the credential.
    assert!(!form.contains_key("client_id"), "{:?}", form.keys());
    assert!(!form.contains_key("client_assertion"));
    let header = header_of(&form["assertion"]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "0123456789abcdef");
    let claims = &provider.accepted_assertions()[0];
    assert_eq!(claims["iss"], EMAIL);
    assert!(!claims.contains_key("sub"), "no delegation, no sub");
    assert_eq!(claims["aud"], provider.token_url());
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!(lifetime <= 3600, "{lifetime}");

    // The token works at the API.
    let client = authed::AuthedClient::builder(source)
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("files").send().await.unwrap().status(), 200);
}

// Issue 18 point 10: Google's service account assertion has `sub` only for domain-wide
// delegation: "sub: The email address of the user for which the application is requesting
// delegated access" (https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests,
// "Additional claims"). Without delegation the claim is absent, not the account's own email.
#[tokio::test]
async fn a_service_account_assertion_carries_sub_only_with_delegation() {
    let provider = provider().await;
    let account = GoogleServiceAccount::from_json(&key_file(&provider)).unwrap();
    let config = account.config().build().unwrap();
    account
        .access_tokens(&config, ["scope-a"])
        .build()
        .token()
        .await
        .unwrap();
    account
        .id_tokens(&config, "https://run.example.com")
        .build()
        .token()
        .await
        .unwrap();
    account
        .access_tokens(&config, ["scope-a"])
        .subject("someone@example.com")
        .build()
        .token()
        .await
        .unwrap();
    let claims = provider.accepted_assertions();
    assert_eq!(claims.len(), 3);
    assert_eq!(provider.token_requests(), 3);
    for own in &claims[..2] {
        assert_eq!(own["iss"], EMAIL);
        assert!(!own.contains_key("sub"), "{own:?}");
    }
    assert_eq!(claims[2]["sub"], "someone@example.com");
}

#[tokio::test]
async fn domain_wide_delegation_sets_the_subject() {
    let provider = provider().await;
    let account = GoogleServiceAccount::from_json(&key_file(&provider)).unwrap();
    let config = account.config().build().unwrap();
    account
        .access_tokens(&config, ["scope-a"])
        .subject("someone@example.com")
        .build()
        .token()
        .await
        .unwrap();
    let claims = &provider.accepted_assertions()[0];
    assert_eq!(claims["iss"], EMAIL);
    assert_eq!(claims["sub"], "someone@example.com");
}

#[tokio::test]
async fn an_id_token_for_a_target_audience_is_the_bearer_token() {
    let provider = provider().await;
    let account = GoogleServiceAccount::from_json(&key_file(&provider)).unwrap();
    let config = account.config().build().unwrap();
    let source = account
        .id_tokens(&config, "https://my-service.a.run.app")
        .build();
    let token = source.token().await.unwrap();
    // The answer was `{"id_token": ...}` only.
    let jwt = token.access_token().secret();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://my-service.a.run.app");
    let lifetime = token.lifetime().unwrap();
    assert!(lifetime > Duration::from_secs(3000), "{lifetime:?}");
    assert_eq!(
        provider.accepted_assertions()[0]["target_audience"],
        "https://my-service.a.run.app"
    );
}

#[tokio::test]
async fn a_key_the_provider_does_not_know_is_refused() {
    let provider = TestProvider::start().await;
    let account = GoogleServiceAccount::from_json(&key_file(&provider)).unwrap();
    let config = account.config().build().unwrap();
    let e = account
        .access_tokens(&config, ["s"])
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::TokenRevoked(_) | Error::OAuth(_)),
        "{e:?}"
    );
    assert_eq!(e.oauth_error().unwrap().error, "invalid_grant");
}

#[tokio::test]
async fn google_application_credentials_names_the_key_file() {
    let provider = provider().await;
    let dir = tempdir();
    let path = dir.join("sa.json");
    std::fs::write(&path, key_file(&provider)).unwrap();
    let shown = path.display().to_string();
    let env =
        Env::from_fn(move |name| (name == "GOOGLE_APPLICATION_CREDENTIALS").then(|| shown.clone()));
    let account = GoogleServiceAccount::from_env(&env).unwrap().unwrap();
    assert_eq!(account.private_key_id(), Some("0123456789abcdef"));
    assert!(
        GoogleServiceAccount::from_env(&Env::from_fn(|_| None))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn bad_key_files_are_configuration_errors_without_the_key() {
    let provider = TestProvider::start().await;
    let good: Value = serde_json::from_str(&key_file(&provider)).unwrap();
    let pem = good["private_key"].as_str().unwrap().to_owned();
    let body_line = pem.lines().nth(3).unwrap().to_owned();
    let mut user = good.clone();
    user["type"] = json!("authorized_user");
    let mut no_email = good.clone();
    no_email.as_object_mut().unwrap().remove("client_email");
    let mut broken = good.clone();
    broken["private_key"] = json!(pem.replace(&body_line, "AAAA"));
    for text in [
        "not json".to_owned(),
        user.to_string(),
        no_email.to_string(),
        broken.to_string(),
    ] {
        let e = GoogleServiceAccount::from_json(&text).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains(&body_line));
    }
    let account = GoogleServiceAccount::from_json(&good.to_string()).unwrap();
    let shown = format!("{account:?}");
    assert!(!shown.contains(&body_line), "{shown}");
    assert!(shown.contains(EMAIL));
}

#[tokio::test]
async fn a_generic_jwt_bearer_grant_sends_scope_as_a_parameter() {
    let provider = TestProvider::start().await;
    let key = SigningKey::from_pem(&std::fs::read(format!("{}/ec_pkcs8.pem", keys_dir())).unwrap())
        .unwrap();
    provider.register_client_key("issuer-app", key.public_jwk());
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    let source = config
        .jwt_bearer(key)
        .issuer("issuer-app")
        .subject("user-42")
        .assertion_audience(provider.issuer())
        .scopes(["read"])
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(token.scopes(), Some(&["read".to_owned()][..]));
    let form = &provider.token_forms()[0];
    assert_eq!(form["scope"], "read");
    // The client authenticates as usual next to the grant's assertion.
    assert!(!form.contains_key("client_secret"));
    let claims = &provider.accepted_assertions()[0];
    assert_eq!(claims["sub"], "user-42");
    assert_eq!(claims["aud"], provider.issuer());
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "authed-jwt-bearer-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

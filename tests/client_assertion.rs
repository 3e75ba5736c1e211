//! `private_key_jwt` and `client_secret_jwt` client authentication (RFC 7523 §2.2) on every
//! request to the provider, method and algorithm negotiation from discovery, against the
//! in-process provider, which verifies each assertion for real.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use authed::testing::{ManualClock, TestProvider};
use authed::{ClientAuthMethod, Error, OAuthConfig, SigningAlgorithm, SigningKey, TokenSource};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const JWT_CLIENT: &str = "jwt-client";

fn key(name: &str) -> SigningKey {
    let pem = std::fs::read(format!(
        "{}/tests/support/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    SigningKey::from_pem(&pem).unwrap().with_kid(name)
}

/// A provider with `JWT_CLIENT` registered under `key`'s public JWK.
async fn provider_with(key: &SigningKey) -> TestProvider {
    let provider = TestProvider::start().await;
    provider.register_client_key(JWT_CLIENT, key.public_jwk());
    provider
}

fn config(provider: &TestProvider, key: SigningKey) -> OAuthConfig {
    OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .revocation_url(provider.revocation_url())
        .device_authorization_url(provider.device_authorization_url())
        .client_id(JWT_CLIENT)
        .private_key(key)
        .build()
        .unwrap()
}

fn jwt_part(jwt: &str, index: usize) -> Map<String, Value> {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The assertion of the `n`th token request, and its header.
fn sent_assertion(provider: &TestProvider, n: usize) -> (String, Map<String, Value>) {
    let form = &provider.token_forms()[n];
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    let jwt = form["client_assertion"].clone();
    let header = jwt_part(&jwt, 0);
    (jwt, header)
}

#[tokio::test]
async fn private_key_jwt_with_each_key_type_gets_tokens() {
    for name in ["rsa_pkcs8", "ec_pkcs8", "ed25519"] {
        let key = key(name);
        let provider = provider_with(&key).await;
        let source = config(&provider, key.clone()).client_credentials().build();
        let token = source.token().await.unwrap();
        assert!(!token.access_token().secret().is_empty());
        let (_, header) = sent_assertion(&provider, 0);
        assert_eq!(header["alg"], key.algorithm().as_str(), "{name}");
        assert_eq!(header["kid"], name);
        assert_eq!(provider.accepted_assertions().len(), 1);
    }
}

#[tokio::test]
async fn assertion_claims_follow_rfc_7523() {
    let key = key("ec_pkcs8");
    let provider = provider_with(&key).await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    provider.set_clock(clock.clone());
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(JWT_CLIENT)
        .private_key(key)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    config.client_credentials().build().token().await.unwrap();
    config
        .client_credentials()
        .scopes(["other"])
        .build()
        .token()
        .await
        .unwrap();
    let claims = provider.accepted_assertions();
    assert_eq!(claims.len(), 2);
    for c in &claims {
        assert_eq!(c["iss"], JWT_CLIENT);
        assert_eq!(c["sub"], JWT_CLIENT);
        // The issuer is known: it is the audience (RFC 7523bis, FAPI 2).
        assert_eq!(c["aud"], provider.issuer());
        assert_eq!(c["iat"], 1_800_000_000u64);
        assert_eq!(c["exp"], 1_800_000_060u64);
        let jti = c["jti"].as_str().unwrap();
        // 128 random bits, base64url: at least 22 characters.
        assert!(jti.len() >= 22, "{jti}");
    }
    assert_ne!(claims[0]["jti"], claims[1]["jti"]);
}

#[tokio::test]
async fn audience_is_the_token_url_without_issuer_and_can_be_set() {
    let key = key("ed25519");
    let provider = provider_with(&key).await;
    let without_issuer = OAuthConfig::builder(provider.token_url())
        .client_id(JWT_CLIENT)
        .private_key(key.clone())
        .build()
        .unwrap();
    without_issuer
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    let set = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_assertion_audience(provider.token_url())
        .client_id(JWT_CLIENT)
        .private_key(key.clone())
        .build()
        .unwrap();
    set.client_credentials().build().token().await.unwrap();
    let wrong = OAuthConfig::builder(provider.token_url())
        .client_assertion_audience("https://someone-else.example")
        .client_id(JWT_CLIENT)
        .private_key(key)
        .build()
        .unwrap();
    let e = wrong
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
    let claims = provider.accepted_assertions();
    assert_eq!(claims[0]["aud"], provider.token_url());
    assert_eq!(claims[1]["aud"], provider.token_url());
}

#[tokio::test]
async fn a_wrong_key_is_invalid_client() {
    let provider = provider_with(&key("rsa_pkcs8")).await;
    // Same kid, another key.
    let other = key("rsa_other").with_kid("rsa_pkcs8");
    let e = config(&provider, other)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
    assert!(provider.accepted_assertions().is_empty());
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let key = key("ec_pkcs8");
    let provider = provider_with(&key).await;
    config(&provider, key)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    let (assertion, _) = sent_assertion(&provider, 0);
    // An attacker who saw the request sends the same assertion again.
    let resp = reqwest::Client::new()
        .post(provider.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", JWT_CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains("jti"));
}

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let key = key("ed25519");
    let provider = provider_with(&key).await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    provider.set_clock(clock.clone());
    // The client's clock is two minutes slow: its 60-second assertions are dead on arrival.
    let client_clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000 - 120));
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(JWT_CLIENT)
        .private_key(key)
        .clock(client_clock)
        .build()
        .unwrap();
    let e = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
}

#[tokio::test]
async fn every_request_to_the_provider_carries_a_fresh_assertion() {
    let key = key("rsa_pkcs8");
    let provider = provider_with(&key).await;
    let config = config(&provider, key);
    let token = config.client_credentials().build().token().await.unwrap();
    config
        .revoke_access_token(token.access_token())
        .await
        .unwrap();
    assert_eq!(provider.revocations().len(), 1);
    config
        .device_authorization()
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let claims = provider.accepted_assertions();
    assert_eq!(claims.len(), 3, "token, revocation, device authorization");
    let mut jtis: Vec<_> = claims.iter().map(|c| c["jti"].clone()).collect();
    jtis.dedup();
    assert_eq!(jtis.len(), 3);
}

#[tokio::test]
async fn client_secret_jwt_sends_no_secret() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    config.client_credentials().build().token().await.unwrap();
    let (jwt, header) = sent_assertion(&provider, 0);
    assert_eq!(header["alg"], "HS256");
    assert!(!jwt.contains(TestProvider::CLIENT_SECRET));
    assert_eq!(
        provider.accepted_assertions()[0]["iss"],
        TestProvider::CLIENT_ID
    );

    let wrong = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret("not-the-secret")
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    let e = wrong
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
}

#[tokio::test]
async fn discovery_picks_private_key_jwt_for_a_key() {
    let key = key("ed25519");
    let provider = provider_with(&key).await;
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(JWT_CLIENT)
        .private_key(key)
        .build()
        .unwrap();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    config.client_credentials().build().token().await.unwrap();
    let secret = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap();
    assert_eq!(
        secret.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
}

/// A provider whose metadata lists these methods and assertion algorithms.
async fn metadata(methods: Value, algs: Option<Value>) -> MockServer {
    let server = MockServer::start().await;
    let mut meta = json!({
        "issuer": server.uri(),
        "token_endpoint": format!("{}/token", server.uri()),
        "token_endpoint_auth_methods_supported": methods,
    });
    if let Some(algs) = algs {
        meta["token_endpoint_auth_signing_alg_values_supported"] = algs;
    }
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(meta))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_provider_offering_nothing_the_client_can_do_is_a_configuration_error() {
    // Only private_key_jwt, and the client has only a secret: this used to send Basic.
    let server = metadata(json!(["private_key_jwt"]), None).await;
    let e = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.is_configuration());
    assert!(e.to_string().contains("client_secret_basic"), "{e}");

    // A key, and a provider that takes only secrets.
    let server = metadata(json!(["client_secret_basic"]), None).await;
    let e = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .private_key(key("ed25519"))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("private_key_jwt"), "{e}");
}

#[tokio::test]
async fn discovery_picks_client_secret_jwt_when_that_is_what_is_offered() {
    let server = metadata(json!(["client_secret_jwt"]), Some(json!(["HS512"]))).await;
    let config = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .client_secret("a-secret-of-sixty-four-bytes-for-hs512-aaaaaaaaaaaaaaaaaaaaaaaaa")
        .build()
        .unwrap();
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretJwt
    );
    let server = metadata(json!(["client_secret_jwt"]), Some(json!(["RS256"]))).await;
    let e = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .client_secret("secret")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

#[tokio::test]
async fn the_algorithm_is_one_the_provider_lists() {
    // An RSA key defaults to RS256; the provider takes only PS256 (FAPI 2).
    let server = metadata(json!(["private_key_jwt"]), Some(json!(["PS256", "ES256"]))).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at", "token_type": "Bearer"})),
        )
        .mount(&server)
        .await;
    let config = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .private_key(key("rsa_pkcs8"))
        .build()
        .unwrap();
    config.client_credentials().build().token().await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let request = requests.iter().find(|r| r.method == "POST").unwrap();
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    assert_eq!(jwt_part(&form["client_assertion"], 0)["alg"], "PS256");
    assert_eq!(jwt_part(&form["client_assertion"], 1)["aud"], server.uri());

    // An Ed25519 key cannot sign any listed algorithm.
    let server = metadata(json!(["private_key_jwt"]), Some(json!(["RS256", "PS256"]))).await;
    let e = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id("id")
        .private_key(key("ed25519"))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("EdDSA"), "{e}");
}

#[tokio::test]
async fn an_explicit_algorithm_is_kept_when_listed() {
    let key = key("rsa_pkcs8")
        .with_algorithm(SigningAlgorithm::PS256)
        .unwrap();
    let provider = provider_with(&key).await;
    config(&provider, key)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(sent_assertion(&provider, 0).1["alg"], "PS256");
}

#[tokio::test]
async fn private_key_jwt_needs_a_key() {
    let e = OAuthConfig::builder("https://auth.example.com/token")
        .client_id("id")
        .auth_method(ClientAuthMethod::PrivateKeyJwt)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let e = OAuthConfig::builder("https://auth.example.com/token")
        .client_id("id")
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

#[tokio::test]
async fn debug_of_a_config_with_a_key_shows_no_key() {
    let key = key("ec_pkcs8");
    let config = OAuthConfig::builder("https://auth.example.com/token")
        .client_id("id")
        .private_key(key)
        .build()
        .unwrap();
    let text = format!("{config:?}");
    let d = std::fs::read_to_string(format!(
        "{}/tests/support/keys/ec_pkcs8.jwk.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let d: Value = serde_json::from_str(&d).unwrap();
    assert!(!text.contains(d["d"].as_str().unwrap()), "{text}");
    let _ = Arc::new(config);
}

/// An assertion signed elsewhere (a platform's token), as a test builds it.
fn external_assertion(provider: &TestProvider, jti: &str) -> String {
    let pem = std::fs::read(format!(
        "{}/tests/support/keys/ec_pkcs8.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": provider.issuer(),
        "jti": jti, "iat": now, "exp": now + 600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec_pkcs8".into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn a_client_assertion_file_is_read_at_each_request() {
    let provider = provider_with(&key("ec_pkcs8")).await;
    let dir = std::env::temp_dir().join(format!("authed-assertion-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("federated-token");
    let first = external_assertion(&provider, "platform-1");
    std::fs::write(&path, format!("{first}\n")).unwrap();
    let config = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(JWT_CLIENT)
        .client_assertion_file(&path)
        .build()
        .unwrap();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    config.client_credentials().build().token().await.unwrap();
    // The platform writes a new token.
    let second = external_assertion(&provider, "platform-2");
    std::fs::write(&path, &second).unwrap();
    config
        .client_credentials()
        .scopes(["other"])
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(sent_assertion(&provider, 0).0, first);
    assert_eq!(sent_assertion(&provider, 1).0, second);

    let both = OAuthConfig::builder(provider.token_url())
        .client_id(JWT_CLIENT)
        .client_assertion_file(&path)
        .private_key(key("ec_pkcs8"))
        .build()
        .unwrap_err();
    assert!(matches!(both, Error::Config(_)), "{both:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

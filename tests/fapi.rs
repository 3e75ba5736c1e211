//! The FAPI 2.0 profile switch: each client duty a configuration or flow does not meet is a
//! typed error naming it, and a configuration that meets them signs in the FAPI way against
//! the in-process provider (PAR always, `private_key_jwt` with PS256, DPoP-bound tokens,
//! RFC 9207 `iss` required).

use authed::testing::TestProvider;
use authed::{
    CallbackError, ClientAuthMethod, DpopKey, Error, Fapi2, FapiDuty, OAuthConfig,
    OAuthConfigBuilder, ResponseMode, SigningAlgorithm, SigningKey,
};

const HTTPS_REDIRECT: &str = "https://app.example.com/callback";
const CLIENT: &str = "fapi-client";

fn rsa_key() -> SigningKey {
    SigningKey::from_pem(include_bytes!("support/keys/rsa_pkcs8.pem"))
        .unwrap()
        .with_kid("fapi-rsa")
}

/// Everything FAPI 2.0 asks of a client, against `provider`.
fn fapi(provider: &TestProvider, profile: Fapi2) -> OAuthConfigBuilder {
    provider.register_client_key(CLIENT, rsa_key().public_jwk());
    OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .jwks_url(provider.jwks_url())
        .authorization_url(provider.authorization_url())
        .par_url(provider.par_url())
        .client_id(CLIENT)
        .private_key(rsa_key())
        .dpop(SigningAlgorithm::ES256)
        .fapi2(profile)
}

fn duty(result: Result<impl std::fmt::Debug, Error>) -> FapiDuty {
    match result {
        Err(Error::Fapi(duty)) => duty,
        other => panic!("expected a FAPI duty, got {other:?}"),
    }
}

#[tokio::test]
async fn each_configuration_duty_is_named() {
    let provider = TestProvider::start().await;
    let secret = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build();
    let d = duty(secret);
    assert_eq!(d, FapiDuty::ClientAuthentication("client_secret_basic"));
    assert!(d.to_string().contains("private_key_jwt"), "{d}");

    let public = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .auth_method(ClientAuthMethod::None)
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build();
    assert_eq!(duty(public), FapiDuty::ClientAuthentication("none"));

    let bearer = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .client_id(CLIENT)
        .private_key(rsa_key())
        .fapi2(Fapi2::SecurityProfile)
        .build();
    assert_eq!(duty(bearer), FapiDuty::SenderConstrainedTokens);

    let rsa_dpop = fapi(&provider, Fapi2::SecurityProfile)
        .dpop_key(DpopKey::generate(SigningAlgorithm::RS256).unwrap())
        .build();
    assert_eq!(duty(rsa_dpop), FapiDuty::AllowedAlgorithms("RS256"));

    let no_issuer = OAuthConfig::builder(provider.token_url())
        .client_id(CLIENT)
        .private_key(rsa_key())
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build();
    assert_eq!(duty(no_issuer), FapiDuty::IssuerIdentification);

    let e = fapi(&provider, Fapi2::SecurityProfile)
        .client_secret("x")
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap_err();
    assert!(e.is_configuration());
    assert_eq!(e.kind(), "fapi");
}

#[tokio::test]
async fn an_rsa_key_signs_with_ps256_and_a_provider_listing_only_rs256_is_refused() {
    let provider = TestProvider::start().await;
    let config = fapi(&provider, Fapi2::SecurityProfile).build().unwrap();
    // The assertion of a client credentials request shows the algorithm.
    let source = config.client_credentials().build();
    authed::TokenSource::token(&source).await.unwrap();
    let header = provider.token_forms().pop().unwrap()["client_assertion"].clone();
    let header: serde_json::Value =
        serde_json::from_slice(&base64_url(header.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "PS256");

    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": server.uri(),
            "token_endpoint": format!("{}/token", server.uri()),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        })))
        .mount(&server)
        .await;
    let only_rs256 = OAuthConfig::discover(server.uri())
        .await
        .unwrap()
        .client_id(CLIENT)
        .private_key(rsa_key())
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build();
    assert_eq!(duty(only_rs256), FapiDuty::AllowedAlgorithms("RS256"));
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn each_flow_duty_is_named() {
    let provider = TestProvider::start().await;
    let config = fapi(&provider, Fapi2::SecurityProfile).build().unwrap();
    let loopback = config
        .authorization_code("http://127.0.0.1:9/callback")
        .build();
    assert_eq!(duty(loopback), FapiDuty::HttpsRedirectUri);

    let no_par = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
        .client_id(CLIENT)
        .private_key(rsa_key())
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build()
        .unwrap();
    assert_eq!(
        duty(no_par.authorization_code(HTTPS_REDIRECT).build()),
        FapiDuty::PushedAuthorizationRequests
    );

    let signing = fapi(&provider, Fapi2::MessageSigning).build().unwrap();
    let plain = signing
        .authorization_code(HTTPS_REDIRECT)
        .response_mode(ResponseMode::Query)
        .build();
    assert_eq!(duty(plain), FapiDuty::SignedResponses("query"));
    let form_post = signing
        .authorization_code(HTTPS_REDIRECT)
        .response_mode(ResponseMode::FormPost)
        .build();
    assert_eq!(duty(form_post), FapiDuty::SignedResponses("form_post"));
}

#[tokio::test]
async fn a_fapi_sign_in_is_pushed_dpop_bound_and_needs_iss_on_the_callback() {
    let provider = TestProvider::start().await;
    provider.set_dpop_nonce_required(true);
    let config = fapi(&provider, Fapi2::SecurityProfile).build().unwrap();
    assert_eq!(config.fapi2(), Some(Fapi2::SecurityProfile));
    let flow = config
        .authorization_code(HTTPS_REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let front: Vec<(String, String)> = url::Url::parse(pending.url())
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(front.len(), 2, "pushed without being asked: {front:?}");
    let pushed = provider.pushed_requests().pop().unwrap();
    assert_eq!(pushed["code_challenge_method"], "S256");
    assert_eq!(
        pushed["dpop_jkt"],
        config.dpop_key().unwrap().thumbprint(),
        "the code is bound to the DPoP key"
    );
    let callback = provider.browse(pending.url()).await.callback();
    let login = flow.complete(pending, &callback).await.unwrap();
    assert_eq!(login.current().unwrap().token_type(), "DPoP");
    for assertion in provider.accepted_assertions() {
        assert_eq!(assertion["aud"], provider.issuer(), "aud is the issuer");
    }

    // A provider that leaves out RFC 9207 iss: refused under FAPI, whatever the metadata says.
    provider.set_iss_parameter(false);
    let pending = flow.authorize().await.unwrap();
    let callback = provider.browse(pending.url()).await.callback();
    let e = flow.complete(pending, &callback).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::MissingIssuer)),
        "{e:?}"
    );
}

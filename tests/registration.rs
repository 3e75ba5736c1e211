//! Dynamic client registration (RFC 7591) against the in-process provider: the registered
//! client's configuration works at once (client credentials, sign-in, refresh), the
//! provider's refusals are typed errors, and its secrets stay out of `Debug`.

use authed::testing::TestProvider;
use authed::{ClientAuthMethod, ClientMetadata, Error, OAuthConfig, SigningKey, TokenSource};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn sign_in(provider: &TestProvider, config: &OAuthConfig) -> authed::RefreshTokenSource {
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = provider.approve(pending.url()).await;
    flow.complete_url(pending, &callback).await.unwrap()
}

#[tokio::test]
async fn a_registered_client_gets_a_ready_configuration() {
    let provider = TestProvider::start().await;
    let registration = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .register(
            ClientMetadata::new()
                .client_name("Reports")
                .redirect_uris([REDIRECT])
                .grant_types(["authorization_code", "refresh_token", "client_credentials"])
                .scope(["openid", "reports:read"])
                .contacts(["ops@example.com"]),
        )
        .await
        .unwrap();
    assert!(registration.client_id().starts_with("dyn-"));
    assert!(registration.client_secret().is_some());
    assert_eq!(
        registration.client_secret_expires_at(),
        None,
        "0 means never"
    );
    assert!(registration.client_id_issued_at().is_some());
    assert!(registration.registration_access_token().is_some());
    assert!(
        registration
            .registration_client_uri()
            .unwrap()
            .ends_with(registration.client_id())
    );
    assert!(registration.metadata().get("client_secret").is_none());
    assert!(
        registration
            .metadata()
            .get("registration_access_token")
            .is_none()
    );
    let sent = &provider.registrations()[0];
    assert_eq!(sent["client_name"], "Reports");
    assert_eq!(sent["scope"], "openid reports:read");
    assert_eq!(sent["redirect_uris"][0], REDIRECT);

    let config = registration.config();
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
    // The discovered endpoints came along: client credentials, sign-in, userinfo.
    config.client_credentials().build().token().await.unwrap();
    let login = sign_in(&provider, config).await;
    assert_eq!(login.userinfo().await.unwrap().sub(), "user-1");

    // Secrets stay out of Debug.
    let shown = format!("{registration:?}");
    let secret = registration.client_secret().unwrap().secret();
    let token = registration.registration_access_token().unwrap().secret();
    assert!(!shown.contains(secret) && !shown.contains(token), "{shown}");
}

#[tokio::test]
async fn private_key_jwt_registers_the_public_half_of_the_configured_key() {
    let provider = TestProvider::start().await;
    let key = SigningKey::from_pem(include_bytes!("support/keys/ec_pkcs8.pem"))
        .unwrap()
        .with_kid("k1");
    let registration = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .private_key(key.clone())
        .register(ClientMetadata::new().grant_types(["client_credentials"]))
        .await
        .unwrap();
    let sent = &provider.registrations()[0];
    assert_eq!(sent["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(sent["jwks"]["keys"][0], key.public_jwk().to_value());
    assert!(
        sent["jwks"]["keys"][0].get("d").is_none(),
        "only the public half"
    );
    assert!(registration.client_secret().is_none());
    let config = registration.config();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    config.client_credentials().build().token().await.unwrap();
    assert_eq!(
        provider.accepted_assertions().len(),
        1,
        "the assertion was verified"
    );
}

#[tokio::test]
async fn a_public_native_client_signs_in_and_refreshes() {
    let provider = TestProvider::start().await;
    let registration = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .register(
            ClientMetadata::new()
                .application_type("native")
                .redirect_uris([REDIRECT])
                .grant_types(["authorization_code", "refresh_token"])
                .token_endpoint_auth_method(ClientAuthMethod::None),
        )
        .await
        .unwrap();
    assert!(registration.client_secret().is_none());
    let config = registration.into_config();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::None);
    let login = sign_in(&provider, &config).await;
    provider.revoke_access_tokens();
    let old = login.current().unwrap();
    login.token_rejected(&old).await.unwrap();
}

#[tokio::test]
async fn the_providers_refusals_are_typed_errors() {
    let provider = TestProvider::start().await;
    let discovered = || async { OAuthConfig::discover(provider.issuer()).await.unwrap() };
    // No redirect URI for the (default) authorization code grant.
    let e = discovered()
        .await
        .register(ClientMetadata::new().client_name("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRedirectUri(_)), "{e:?}");
    assert!(e.is_configuration());
    assert_eq!(e.kind(), "invalid_redirect_uri");
    assert!(e.to_string().contains("redirect_uris is required"), "{e}");

    let e = discovered()
        .await
        .register(
            ClientMetadata::new()
                .redirect_uris([REDIRECT])
                .field("token_endpoint_auth_method", "magic".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClientMetadata(_)), "{e:?}");
    assert_eq!(e.kind(), "invalid_client_metadata");
    assert_eq!(e.oauth_error().unwrap().status, Some(400));
}

#[tokio::test]
async fn bad_redirect_uris_are_refused_before_anything_is_sent() {
    let provider = TestProvider::start().await;
    for bad in [
        "http://app.example.com/cb",
        "https://app.example.com/cb#x",
        "javascript:alert(1)",
    ] {
        let e = OAuthConfig::discover(provider.issuer())
            .await
            .unwrap()
            .register(ClientMetadata::new().post_logout_redirect_uris([bad]))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e:?}");
    }
    assert!(provider.registrations().is_empty());
    let e = OAuthConfig::builder(provider.token_url())
        .register(ClientMetadata::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("registration endpoint"), "{e}");
}

#[tokio::test]
async fn the_initial_access_token_is_required_and_never_shown() {
    let provider = TestProvider::start().await;
    provider.set_registration_token(Some("initial-secret"));
    let metadata = ClientMetadata::new().redirect_uris([REDIRECT]);
    let e = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .register(metadata.clone())
        .await
        .unwrap_err();
    assert_eq!(e.oauth_error().unwrap().error, "invalid_token", "{e:?}");
    assert_eq!(e.oauth_error().unwrap().status, Some(401));

    let metadata = metadata.initial_access_token("initial-secret");
    assert!(!format!("{metadata:?}").contains("initial-secret"));
    OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .register(metadata)
        .await
        .unwrap();
    assert_eq!(provider.registrations().len(), 2);
}

//! `private_key_jwt` and `client_secret_jwt` against oidc-provider: clients registered with
//! those methods (the first with its JWKS in the client metadata) get tokens through client
//! credentials and through authorization code + refresh; a wrong key or secret is
//! `InvalidClient`.

use super::signin::{REDIRECT_URI, SCOPES, headless_login};
use super::*;
use authed::SigningKey;

const PKJWT_ID: &str = "authed-pkjwt";
const PKJWT_KID: &str = "authed-pkjwt-rsa";
const SECRET_JWT_ID: &str = "authed-secretjwt";
const SECRET_JWT_SECRET: &str = "interop-client-secret-jwt-0123456789abcdef";

fn key(name: &str) -> SigningKey {
    let path = format!(
        "{}/tests/support/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    SigningKey::from_pem(&std::fs::read(path).unwrap())
        .unwrap()
        .with_kid(PKJWT_KID)
}

/// The `private_key_jwt` client, configured by discovery: the key makes it the method.
async fn pkjwt_config(server: &Server, key: SigningKey) -> OAuthConfig {
    OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(PKJWT_ID)
        .private_key(key)
        .build()
        .unwrap()
}

async fn secret_jwt_config(server: &Server, secret: &str) -> OAuthConfig {
    OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(SECRET_JWT_ID)
        .client_secret(secret)
        .auth_method(ClientAuthMethod::ClientSecretJwt)
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_credentials_with_private_key_jwt() {
    let server = Server::start();
    let config = pkjwt_config(&server, key("rsa_pkcs8")).await;
    assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    let source = config.client_credentials().scopes(["api:read"]).build();
    let client = server.api(Arc::new(source));
    let body = resource(&client).await.unwrap();
    assert_eq!(body["client_id"], PKJWT_ID);
    assert_eq!(body["kind"], "ClientCredentials");
    // A second grant: a fresh assertion (oidc-provider refuses a reused jti).
    config.client_credentials().build().token().await.unwrap();
}

#[tokio::test]
async fn client_credentials_with_client_secret_jwt() {
    let server = Server::start();
    let config = secret_jwt_config(&server, SECRET_JWT_SECRET).await;
    let client = server.api(Arc::new(config.client_credentials().build()));
    let body = resource(&client).await.unwrap();
    assert_eq!(body["client_id"], SECRET_JWT_ID);
    config.client_credentials().build().token().await.unwrap();
}

/// Signs in through the authorization code flow, then refreshes (rotating the refresh
/// token): every token request authenticated by a fresh assertion.
async fn sign_in_and_refresh(server: &Server, config: &OAuthConfig, client_id: &str) {
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = headless_login(pending.url(), REDIRECT_URI).await;
    let login = Arc::new(flow.complete_url(pending, &callback).await.unwrap());
    let first = login.current().unwrap();
    assert_eq!(login.id_token_claims().unwrap().sub(), "alice");
    let body = resource(&server.api(login.clone())).await.unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["client_id"], client_id);
    // The API rejected the token: refresh.
    let second = login.token_rejected(&first).await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_ne!(second.refresh_token(), first.refresh_token(), "rotated");
    let (status, _) = raw_resource_status(server, &second).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn authorization_code_and_refresh_with_private_key_jwt() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = pkjwt_config(&server, key("rsa_pkcs8")).await;
    sign_in_and_refresh(&server, &config, PKJWT_ID).await;
}

#[tokio::test]
async fn authorization_code_and_refresh_with_client_secret_jwt() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = secret_jwt_config(&server, SECRET_JWT_SECRET).await;
    sign_in_and_refresh(&server, &config, SECRET_JWT_ID).await;
}

#[tokio::test]
async fn a_wrong_key_or_secret_is_invalid_client() {
    let server = Server::start();
    // Another RSA key under the registered kid.
    let config = pkjwt_config(&server, key("rsa_other")).await;
    let err = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidClient(_)), "{err:?}");
    assert!(err.is_configuration());

    let config = secret_jwt_config(&server, "not-the-secret-but-also-thirty-two-bytes").await;
    let err = config
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidClient(_)), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"));
}

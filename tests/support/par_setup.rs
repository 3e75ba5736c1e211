//! What the PAR tests share: the redirect URI, a URL's query, the client's key, and a
//! configuration of every endpoint of the in-process provider.

use std::collections::HashMap;

use authed::testing::TestProvider;
use authed::{ClientAuthMethod, OAuthConfig, SigningKey};

pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";

pub(crate) fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub(crate) fn key() -> SigningKey {
    SigningKey::from_pem(include_bytes!("keys/ec_pkcs8.pem"))
        .unwrap()
        .with_kid("par-ec")
}

/// A configuration of every endpoint of `provider` for `client`, authenticating with
/// `method`.
pub(crate) fn config(provider: &TestProvider, method: ClientAuthMethod) -> OAuthConfig {
    let b = OAuthConfig::builder(provider.token_url())
        .issuer(provider.issuer())
        .jwks_url(provider.jwks_url())
        .authorization_url(provider.authorization_url())
        .par_url(provider.par_url());
    match method {
        ClientAuthMethod::PrivateKeyJwt => {
            provider.register_client_key("par-jwt-client", key().public_jwk());
            b.client_id("par-jwt-client").private_key(key())
        }
        ClientAuthMethod::None => b
            .client_id(TestProvider::PUBLIC_CLIENT_ID)
            .auth_method(ClientAuthMethod::None),
        method => b
            .client_id(TestProvider::CLIENT_ID)
            .client_secret(TestProvider::CLIENT_SECRET)
            .auth_method(method),
    }
    .build()
    .unwrap()
}

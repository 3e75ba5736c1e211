//! Logout: what `RefreshTokenSource::logout` tells the caller about the provider, and
//! `require_revocation`, which refuses to build a login flow that could not be revoked.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::{
    AccessToken, Error, Logout, MemoryStore, OAuthConfig, OAuthConfigBuilder, RefreshToken, Token,
    TokenStore,
};
use wiremock::MockServer;

const KEY: &str = "user-1";

fn config_for(server: &MockServer) -> OAuthConfigBuilder {
    OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("app")
        .client_secret("app-secret")
}

struct Login {
    store: Arc<MemoryStore>,
    source: authed::RefreshTokenSource,
}

async fn expired_login(config: OAuthConfig, refresh_token: &str) -> Login {
    let store = Arc::new(MemoryStore::new());
    let issued = SystemTime::now() - Duration::from_secs(7200);
    let token = Token::new(AccessToken::new("expired-access-token"))
        .with_lifetime(issued, Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new(refresh_token)));
    let source = config
        .refresh_token_source()
        .store(store.clone())
        .key(KEY)
        .from_token(token)
        .await
        .unwrap();
    Login { store, source }
}

// Without a revocation endpoint nothing can be sent: the login is forgotten here, and the
// caller is told that the provider still honours its tokens.
#[tokio::test]
async fn logout_without_a_revocation_endpoint_says_nothing_was_revoked() {
    let server = MockServer::start().await;
    let login = expired_login(config_for(&server).build().unwrap(), "rt").await;
    assert_eq!(login.source.logout().await.unwrap(), Logout::NotRevoked);
    assert!(login.store.load(KEY).await.unwrap().is_none());
    assert!(login.source.current().is_none());
    assert!(server.received_requests().await.unwrap().is_empty());
    // Signed out already: nothing to revoke.
    assert_eq!(login.source.logout().await.unwrap(), Logout::NoLogin);
}

// `require_revocation` moves that discovery to the moment the flow is built.
#[tokio::test]
async fn require_revocation_is_checked_when_the_flow_is_built() {
    let server = MockServer::start().await;
    let without = config_for(&server)
        .authorization_url(format!("{}/authorize", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .build()
        .unwrap();
    let refused = |e: Error| matches!(&e, Error::Config(m) if m.contains("revocation endpoint"));
    let token = || Token::new(AccessToken::new("at"));
    let e = without
        .refresh_token_source()
        .require_revocation()
        .from_token(token())
        .await
        .unwrap_err();
    assert!(refused(e));
    let e = without
        .refresh_token_source()
        .store(Arc::new(MemoryStore::new()))
        .require_revocation()
        .from_store()
        .await
        .unwrap_err();
    assert!(refused(e));
    let e = without
        .authorization_code("http://127.0.0.1/callback")
        .require_revocation()
        .build()
        .unwrap_err();
    assert!(refused(e));
    let e = without
        .device_authorization()
        .require_revocation()
        .build()
        .unwrap_err();
    assert!(refused(e));
    // Without the setting the same flows build, and with an endpoint they build too.
    without.device_authorization().build().unwrap();
    let with = config_for(&server)
        .authorization_url(format!("{}/authorize", server.uri()))
        .revocation_url(format!("{}/revoke", server.uri()))
        .build()
        .unwrap();
    with.authorization_code("http://127.0.0.1/callback")
        .require_revocation()
        .build()
        .unwrap();
    with.refresh_token_source()
        .require_revocation()
        .from_token(token())
        .await
        .unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
}

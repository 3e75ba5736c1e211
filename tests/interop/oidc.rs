//! OpenID Connect, the rest a relying party uses, against oidc-provider (interop/server.mjs):
//! userinfo as JSON and JWT-secured (the server's real keys; the granted scopes decide the
//! claims), with a DPoP-bound token too; RP-Initiated Logout with revocation, through the
//! server's own confirmation page; dynamic client registration (RFC 7591).

use super::*;
use authed::{
    ClientMetadata, Logout, RefreshTokenSource, SigningAlgorithm, SigningKey, UserInfoError,
};

pub(crate) const RP: &str = "authed-rp";
const RP_JWT: &str = "authed-rp-jwt";
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:49152/callback";
const SIGNED_OUT: &str = "http://127.0.0.1/signed-out";
const INITIAL_ACCESS_TOKEN: &str = "interop-initial-access-token";

/// A browser with a cookie jar: the provider's session lives in it, from sign-in to logout.
pub(crate) struct Browser(reqwest::Client);

impl Browser {
    pub(crate) fn new() -> Self {
        Browser(
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        )
    }

    /// Follows redirects from `url` until one points at `stop_at`; returns that URL.
    async fn follow(&self, url: &str, stop_at: &str) -> String {
        let mut next = url::Url::parse(url).unwrap();
        for _ in 0..10 {
            let response = self.0.get(next.clone()).send().await.unwrap();
            let status = response.status();
            let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
                panic!(
                    "stopped at HTTP {status}: {}",
                    response.text().await.unwrap()
                );
            };
            next = next.join(location.to_str().unwrap()).unwrap();
            if next.as_str().starts_with(stop_at) {
                return next.into();
            }
        }
        panic!("too many redirects");
    }

    /// Signs in with `flow` (the headless interaction logs `alice` in and consents).
    pub(crate) async fn sign_in(&self, flow: &authed::AuthorizationCode) -> RefreshTokenSource {
        let pending = flow.authorize().await.unwrap();
        let callback = self.follow(pending.url(), REDIRECT_URI).await;
        flow.complete_url(pending, &callback).await.unwrap()
    }

    /// Opens the logout URL and confirms on the provider's page (its form and `xsrf`), as
    /// the user would; returns where the provider sends the browser, or the page's status.
    async fn log_out(&self, url: &str) -> Result<String, u16> {
        let page = self.0.get(url).send().await.unwrap();
        if page.status() != 200 {
            return Err(page.status().as_u16());
        }
        let html = page.text().await.unwrap();
        let grab = |after: &str| {
            let start = html.find(after).unwrap() + after.len();
            html[start..start + html[start..].find('"').unwrap()].to_owned()
        };
        let action = url::Url::parse(url)
            .unwrap()
            .join(&grab("action=\""))
            .unwrap();
        let xsrf = grab("name=\"xsrf\" value=\"");
        let confirm = self
            .0
            .post(action.clone())
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await
            .unwrap();
        let location = confirm.headers().get(reqwest::header::LOCATION).unwrap();
        let next = action.join(location.to_str().unwrap()).unwrap();
        Ok(next.into())
    }
}

async fn rp_login(server: &Server, id: &str, scopes: &[&str]) -> (OAuthConfig, RefreshTokenSource) {
    let config = server.config(id, Some(&format!("{id}-secret"))).await;
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(scopes.iter().copied())
        .build()
        .unwrap();
    let login = Browser::new().sign_in(&flow).await;
    (config, login)
}

#[tokio::test]
async fn userinfo_as_json_and_jwt_secured_with_the_claims_the_scopes_grant() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let (config, login) = rp_login(&server, RP, &["openid", "profile", "email"]).await;
    assert!(config.endpoints().userinfo_url.is_some(), "discovered");
    let me = login.userinfo().await.unwrap();
    assert!(!me.is_signed());
    assert_eq!(me.sub(), "alice");
    assert_eq!(me.name(), Some("Alice Example"));
    assert_eq!(me.preferred_username(), Some("alice"));
    assert_eq!(me.email(), Some("alice@example.com"));
    assert_eq!(me.email_verified(), Some(true));
    assert_eq!(me.zoneinfo(), Some("Europe/London"));
    assert!(me.updated_at().is_some());
    assert_eq!(me.address(), None, "the address scope was not asked for");
    assert_eq!(me.phone_number(), None);

    let (signed_config, signed) = rp_login(&server, RP_JWT, &["openid", "address", "phone"]).await;
    let me = signed.userinfo().await.unwrap();
    assert!(me.is_signed(), "verified against the server's JWKS (RS256)");
    assert_eq!(me.sub(), "alice");
    assert_eq!(me.address().unwrap().locality.as_deref(), Some("London"));
    assert_eq!(me.phone_number_verified(), Some(false));
    assert_eq!(me.email(), None);

    // Core §5.3.2: an answer about another subject is not used.
    let token = signed.current().unwrap();
    let e = signed_config.userinfo(&token, "bob").await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::SubjectMismatch)),
        "{e:?}"
    );
    // A signed answer is for the client it names: another client's configuration refuses it.
    let e = config.userinfo(&token, "alice").await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::Audience)),
        "{e:?}"
    );
    let token = login.current().unwrap();
    let e = config.userinfo(&token, "bob").await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::SubjectMismatch)),
        "{e:?}"
    );
}

#[tokio::test]
async fn userinfo_with_a_dpop_bound_token_answers_the_servers_nonce() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id("authed-dpop")
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(["openid", "offline_access"])
        .build()
        .unwrap();
    let login = Browser::new().sign_in(&flow).await;
    assert_eq!(login.current().unwrap().token_type(), "DPoP");
    // The userinfo endpoint wants its own nonce: one 401 use_dpop_nonce, then the answer.
    assert_eq!(login.userinfo().await.unwrap().sub(), "alice");
    assert_eq!(login.userinfo().await.unwrap().sub(), "alice");
}

#[tokio::test]
async fn rp_initiated_logout_with_revocation_ends_the_session_and_the_tokens() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = server.config(RP, Some("authed-rp-secret")).await;
    assert!(config.endpoints().end_session_url.is_some(), "discovered");
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(["openid", "offline_access"])
        .build()
        .unwrap();
    let browser = Browser::new();
    let login = browser.sign_in(&flow).await;
    let token = login.current().unwrap();

    // A redirect the client did not register: the server refuses the logout request.
    let stray = login
        .end_session()
        .post_logout_redirect_uri("http://127.0.0.1/elsewhere")
        .build()
        .unwrap();
    assert_eq!(browser.log_out(stray.url()).await, Err(400));

    let signed_out = login
        .end_session()
        .post_logout_redirect_uri(SIGNED_OUT)
        .sign_out()
        .await
        .unwrap();
    assert!(matches!(signed_out.logout(), Ok(Logout::Revoked(_))));
    assert!(login.current().is_none());
    // The refresh token is dead at the server.
    let replay = config
        .refresh_token_source()
        .from_token((*token).clone())
        .await
        .unwrap();
    let e = replay.token_rejected(&token).await.unwrap_err();
    assert!(e.is_revoked(), "{e:?}");
    // The browser ends the server's session and comes back with the state.
    let back = browser
        .log_out(signed_out.end_session().url())
        .await
        .unwrap();
    assert!(back.starts_with(SIGNED_OUT), "{back}");
    assert!(signed_out.end_session().is_callback(&back), "{back}");
}

#[tokio::test]
async fn dynamic_registration_gives_clients_that_work_at_once() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let discovered = || async { OAuthConfig::discover(&server.issuer).await.unwrap() };

    // A native public client: signs in with PKCE and refreshes.
    let public = discovered()
        .await
        .register(
            ClientMetadata::new()
                .client_name("authed interop")
                .application_type("native")
                .redirect_uris([REDIRECT_URI])
                .grant_types(["authorization_code", "refresh_token"])
                .scope(["openid", "offline_access"])
                .token_endpoint_auth_method(authed::ClientAuthMethod::None)
                .initial_access_token(INITIAL_ACCESS_TOKEN),
        )
        .await
        .unwrap();
    assert!(public.client_secret().is_none());
    assert!(public.registration_access_token().is_some());
    assert_eq!(public.metadata()["client_name"], "authed interop");
    let flow = public
        .config()
        .authorization_code(REDIRECT_URI)
        .scopes(["openid", "offline_access"])
        .build()
        .unwrap();
    let login = Browser::new().sign_in(&flow).await;
    assert_eq!(login.id_token_claims().unwrap().sub(), "alice");
    let first = login.current().unwrap();
    let second = login.token_rejected(&first).await.unwrap();
    assert_ne!(second.refresh_token(), first.refresh_token(), "rotated");

    // A confidential client with a secret, and one with the configuration's own key.
    let secret = discovered()
        .await
        .register(
            ClientMetadata::new()
                .grant_types(["client_credentials"])
                .response_types(Vec::<String>::new())
                .initial_access_token(INITIAL_ACCESS_TOKEN),
        )
        .await
        .unwrap();
    assert!(secret.client_secret().is_some());
    secret
        .config()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    let key = SigningKey::from_pem(include_bytes!("../support/keys/rsa_pkcs8.pem"))
        .unwrap()
        .with_kid("dyn");
    let keyed = discovered()
        .await
        .private_key(key)
        .register(
            ClientMetadata::new()
                .grant_types(["client_credentials"])
                .response_types(Vec::<String>::new())
                .initial_access_token(INITIAL_ACCESS_TOKEN),
        )
        .await
        .unwrap();
    assert_eq!(
        keyed.metadata()["token_endpoint_auth_method"],
        "private_key_jwt"
    );
    keyed
        .config()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_refusals_are_typed_errors() {
    let server = Server::start();
    let register = |metadata: ClientMetadata| async {
        OAuthConfig::discover(&server.issuer)
            .await
            .unwrap()
            .register(metadata)
            .await
            .unwrap_err()
    };
    let e = register(ClientMetadata::new().redirect_uris([REDIRECT_URI])).await;
    assert_eq!(e.oauth_error().unwrap().error, "invalid_token", "{e:?}");
    let e = register(
        ClientMetadata::new()
            .redirect_uris([REDIRECT_URI])
            .field("token_endpoint_auth_method", "magic".into())
            .initial_access_token(INITIAL_ACCESS_TOKEN),
    )
    .await;
    assert!(matches!(e, Error::InvalidClientMetadata(_)), "{e:?}");
    // A web client may not come back to a native app's private-use scheme.
    let e = register(
        ClientMetadata::new()
            .application_type("web")
            .redirect_uris(["com.example.app:/callback"])
            .initial_access_token(INITIAL_ACCESS_TOKEN),
    )
    .await;
    assert!(matches!(e, Error::InvalidRedirectUri(_)), "{e:?}");
}

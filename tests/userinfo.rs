//! OpenID Connect UserInfo (Core §5.3) against the in-process provider: typed standard
//! claims, the `sub` check of §5.3.2, Bearer and DPoP tokens, JSON and signed-JWT answers,
//! one refresh after a 401; and the answers a provider should not send, from a stand-in.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use authed::testing::{IdTokenForgery, TestProvider};
use authed::{
    Error, IdTokenError, MemoryStore, OAuthConfig, RefreshTokenSource, SigningAlgorithm, Token,
    TokenSource, TokenStore, UserInfoError,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn sign_in(provider: &TestProvider, config: &OAuthConfig) -> RefreshTokenSource {
    sign_in_with(provider, config, None).await
}

async fn sign_in_with(
    provider: &TestProvider,
    config: &OAuthConfig,
    store: Option<Arc<dyn TokenStore>>,
) -> RefreshTokenSource {
    let mut flow = config
        .authorization_code(REDIRECT)
        .scopes(["openid", "profile", "email"]);
    if let Some(store) = store {
        flow = flow.store(store).key("user");
    }
    let flow = flow.build().unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = provider.approve(pending.url()).await;
    flow.complete_url(pending, &callback).await.unwrap()
}

#[tokio::test]
async fn userinfo_gives_the_signed_in_users_standard_claims_typed() {
    let provider = TestProvider::start().await;
    provider.set_subject("alice");
    let login = sign_in(&provider, &provider.config(None)).await;

    let me = login.userinfo().await.unwrap();
    assert_eq!(me.sub(), "alice");
    assert!(!me.is_signed());
    assert_eq!(me.name(), Some("Test User alice"));
    assert_eq!(me.given_name(), Some("Test"));
    assert_eq!(me.family_name(), Some("User alice"));
    assert_eq!(me.preferred_username(), Some("alice"));
    assert_eq!(me.email(), Some("alice@example.com"));
    assert_eq!(me.email_verified(), Some(true));
    assert_eq!(me.phone_number_verified(), Some(false));
    assert_eq!(me.locale(), Some("en-US"));
    assert_eq!(me.zoneinfo(), Some("Europe/Paris"));
    let address = me.address().unwrap();
    assert_eq!(address.locality.as_deref(), Some("Paris"));
    assert_eq!(address.postal_code.as_deref(), Some("75001"));
    assert_eq!(
        me.updated_at()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_700_000_000
    );
    assert_eq!(me.middle_name(), None);
    assert!(me.get("sub").is_some());
    // The ID token carries the same typed getters.
    let claims = login.id_token_claims().unwrap();
    assert_eq!(claims.email(), Some("alice@example.com"));
    // Debug shows the subject, not the personal data.
    let shown = format!("{me:?}");
    assert!(
        shown.contains("alice") && !shown.contains("example.com"),
        "{shown}"
    );
    assert_eq!(provider.userinfo_requests(), 1);
}

#[tokio::test]
async fn an_answer_about_another_sub_is_refused_with_a_typed_error() {
    let provider = TestProvider::start().await;
    let login = sign_in(&provider, &provider.config(None)).await;
    provider.set_userinfo_subject(Some("mallory"));

    match login.userinfo().await {
        Err(Error::UserInfo(UserInfoError::SubjectMismatch)) => {}
        other => panic!("expected SubjectMismatch, got {other:?}"),
    }
    // The same check for a signed answer, and through OAuthConfig::userinfo.
    provider.set_userinfo_signed(true);
    let e = login.userinfo().await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::SubjectMismatch)),
        "{e:?}"
    );
    assert_eq!(e.kind(), "userinfo");
    provider.set_userinfo_subject(None);
    let token = login.current().unwrap();
    let e = provider
        .config(None)
        .userinfo(&token, "someone-else")
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::SubjectMismatch)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_signed_answer_is_verified_with_the_providers_keys() {
    let provider = TestProvider::start().await;
    let login = sign_in(&provider, &provider.config(None)).await;
    provider.set_userinfo_signed(true);
    let me = login.userinfo().await.unwrap();
    assert!(me.is_signed());
    assert_eq!(me.sub(), "user-1");
    assert_eq!(me.email(), Some("user-1@example.com"));
    // Every algorithm the crate verifies (each call fetches the JWKS anew: the login's copy
    // is fetched again for an unknown key only every 10 s).
    let token = login.current().unwrap();
    for alg in ["ES256", "RS256", "PS256"] {
        provider.set_id_token_algorithm(alg);
        let me = provider
            .config(None)
            .userinfo(&token, "user-1")
            .await
            .unwrap();
        assert!(me.is_signed(), "{alg}");
    }
}

#[tokio::test]
async fn a_signed_answer_that_fails_any_check_is_refused() {
    let provider = TestProvider::start().await;
    let login = sign_in(&provider, &provider.config(None)).await;
    provider.set_userinfo_signed(true);
    let cases = [
        (
            IdTokenForgery::WrongSignature,
            UserInfoError::Signature(IdTokenError::BadSignature),
        ),
        (
            IdTokenForgery::UnknownKey,
            UserInfoError::Signature(IdTokenError::UnknownKey),
        ),
        (
            IdTokenForgery::AlgNone,
            UserInfoError::Signature(IdTokenError::AlgorithmNotAllowed),
        ),
        (
            IdTokenForgery::HmacWithPublicKey,
            UserInfoError::Signature(IdTokenError::AlgorithmNotAllowed),
        ),
        (IdTokenForgery::WrongIssuer, UserInfoError::Issuer),
        (IdTokenForgery::WrongAudience, UserInfoError::Audience),
    ];
    for (forgery, want) in cases {
        provider.set_id_token_forgery(Some(forgery));
        match login.userinfo().await {
            Err(Error::UserInfo(got)) => assert_eq!(got, want, "{forgery:?}"),
            other => panic!("{forgery:?}: expected {want:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_dpop_bound_login_sends_a_proof_and_answers_the_nonce() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .issuer(provider.issuer())
        .authorization_url(provider.authorization_url())
        .jwks_url(provider.jwks_url())
        .userinfo_url(provider.userinfo_url())
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap();
    let login = sign_in(&provider, &config).await;
    assert_eq!(login.current().unwrap().token_type(), "DPoP");
    provider.set_dpop_nonce_required(true);
    let proofs = provider.dpop_proofs();

    let me = login.userinfo().await.unwrap();
    assert_eq!(me.sub(), "user-1");
    // `use_dpop_nonce`, then the same request with the nonce, accepted: no refresh.
    assert_eq!(provider.userinfo_requests(), 2);
    assert_eq!(provider.dpop_proofs(), proofs + 1);
    assert_eq!(provider.dpop_nonce_challenges(), 1);
    assert!(
        provider.dpop_refusals().is_empty(),
        "{:?}",
        provider.dpop_refusals()
    );
    let proof = provider.last_dpop_proof().unwrap();
    let claims = jwt_claims(&proof);
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], provider.userinfo_url());
    assert!(claims["ath"].is_string(), "the proof is bound to the token");
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_request_sent_once_more() {
    let provider = TestProvider::start().await;
    let login = sign_in(&provider, &provider.config(None)).await;
    let tokens = provider.token_requests();
    provider.revoke_access_tokens();

    let me = login.userinfo().await.unwrap();
    assert_eq!(me.sub(), "user-1");
    assert_eq!(provider.userinfo_requests(), 2, "401, then the retry");
    assert_eq!(provider.token_requests(), tokens + 1, "one refresh");

    // A token the endpoint keeps refusing: one refresh, then Unauthorized.
    let client_token = provider
        .config(None)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    let e = provider
        .config(None)
        .userinfo(&client_token, "user-1")
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e:?}");
}

#[tokio::test]
async fn a_refresh_keeps_the_id_token_and_a_resumed_login_checks_the_stored_sub() {
    let provider = TestProvider::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let config = provider.config(None);
    let login = sign_in_with(&provider, &config, Some(store.clone())).await;
    // A refresh answer has no ID token: the login keeps the sign-in's.
    provider.revoke_access_tokens();
    let first = login.current().unwrap();
    let refreshed = login.token_rejected(&first).await.unwrap();
    assert_ne!(refreshed.access_token(), first.access_token());
    assert_eq!(refreshed.id_token(), first.id_token());
    assert_eq!(
        store.load("user").await.unwrap().unwrap().id_token(),
        first.id_token()
    );

    let resumed = config
        .refresh_token_source()
        .store(store)
        .key("user")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    assert!(resumed.id_token_claims().is_none());
    assert_eq!(resumed.userinfo().await.unwrap().sub(), "user-1");
    provider.set_userinfo_subject(Some("mallory"));
    let e = resumed.userinfo().await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::SubjectMismatch)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_login_without_an_id_token_has_no_subject_to_check_and_sends_nothing() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let token = Token::new(authed::AccessToken::new("at")).with_refresh_token(Some(
        authed::RefreshToken::new(provider.issue_refresh_token()),
    ));
    let login = config
        .refresh_token_source()
        .from_token(token)
        .await
        .unwrap();
    let e = login.userinfo().await.unwrap_err();
    assert!(
        matches!(e, Error::UserInfo(UserInfoError::NoSubject)),
        "{e:?}"
    );
    assert!(e.is_configuration());
    assert_eq!(provider.userinfo_requests(), 0);
}

/// A stand-in UserInfo endpoint answering `response`, asked through `OAuthConfig::userinfo`.
async fn answer(response: ResponseTemplate) -> Result<authed::UserInfo, Error> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/userinfo"))
        .respond_with(response)
        .mount(&server)
        .await;
    let config = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("c")
        .issuer(server.uri())
        .jwks_url(format!("{}/jwks", server.uri()))
        .userinfo_url(format!("{}/userinfo", server.uri()))
        .build()
        .unwrap();
    let token = Token::new(authed::AccessToken::new("at"));
    config.userinfo(&token, "alice").await
}

#[tokio::test]
async fn answers_a_provider_should_not_send_are_typed_errors() {
    let jwe = "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d";
    let e = answer(ResponseTemplate::new(200).set_body_raw(jwe, "application/jwt")).await;
    assert!(
        matches!(e, Err(Error::UserInfo(UserInfoError::Encrypted))),
        "{e:?}"
    );

    let e =
        answer(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "x"}))).await;
    assert!(
        matches!(e, Err(Error::UserInfo(UserInfoError::Malformed))),
        "{e:?}"
    );

    let e = answer(ResponseTemplate::new(200).set_body_raw("<html>hi</html>", "text/html")).await;
    assert!(
        matches!(e, Err(Error::UserInfo(UserInfoError::Malformed))),
        "{e:?}"
    );

    let e = answer(ResponseTemplate::new(403).insert_header(
        "www-authenticate",
        "Bearer error=\"insufficient_scope\", error_description=\"openid is needed\"",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.oauth_error().unwrap().error,
        "insufficient_scope",
        "{e:?}"
    );
    assert_eq!(e.oauth_error().unwrap().status, Some(403));

    let big = "x".repeat(2 << 20);
    let e = answer(ResponseTemplate::new(200).set_body_raw(big, "application/json")).await;
    assert!(matches!(e, Err(Error::MalformedResponse { .. })), "{e:?}");

    let ok = answer(
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"sub": "alice", "email_verified": "true"})),
    )
    .await
    .unwrap();
    assert_eq!(ok.email_verified(), Some(true), "Cognito's string booleans");
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

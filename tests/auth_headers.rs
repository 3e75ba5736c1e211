//! `AuthHeaders` (issue 21 point 1): the request rules for any HTTP client, against the
//! in-process provider and API over real HTTP. The client here is a plain `reqwest::Client`
//! that knows nothing of authed; the examples show hyper and ureq.

use authed::testing::TestProvider;
use authed::{AfterResponse, AuthHeaders, Error, RequestAuth, SigningAlgorithm, StaticToken};
use http::{Method, StatusCode};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Sends `GET url` with `auth`'s headers until the rules say done; the final status and the
/// number of attempts.
async fn get(auth: &mut RequestAuth, url: &str) -> Result<(StatusCode, usize), Error> {
    let http = reqwest::Client::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let resp = http
            .get(url)
            .headers(auth.headers().clone())
            .send()
            .await
            .unwrap();
        match auth.after_response(resp.status(), resp.headers()).await? {
            AfterResponse::Done => return Ok((resp.status(), attempts)),
            AfterResponse::SendAgain => {}
        }
    }
}

#[tokio::test]
async fn bearer_headers_refresh_once_after_a_rejection() {
    let provider = TestProvider::start().await;
    let auth = AuthHeaders::builder(provider.config(None).client_credentials().build())
        .allow_origin(provider.api_url())
        .build()
        .unwrap();
    let url = format!("{}me", provider.api_url());
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    let value = request.headers()["authorization"].clone();
    assert!(value.is_sensitive());
    assert!(value.to_str().unwrap().starts_with("Bearer "));
    assert!(format!("{request:?}").find("Bearer").is_none());
    assert_eq!(get(&mut request, &url).await.unwrap(), (StatusCode::OK, 1));

    provider.revoke_access_tokens();
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    assert_eq!(get(&mut request, &url).await.unwrap(), (StatusCode::OK, 2));
    assert_eq!(provider.token_requests(), 2, "one refresh");
    assert_eq!(provider.api_requests(), 3);
}

#[tokio::test]
async fn an_origin_that_may_not_receive_tokens_gets_no_headers() {
    let provider = TestProvider::start().await;
    let auth = AuthHeaders::builder(provider.config(None).client_credentials().build())
        .allow_origin(provider.api_url())
        .build()
        .unwrap();
    let err = auth
        .request(Method::GET, "https://elsewhere.example/x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedOrigin { .. }), "{err:?}");
    let err = auth
        .request(Method::GET, "relative/path")
        .await
        .unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert_eq!(provider.token_requests(), 0, "nothing asked of the source");
    let none = AuthHeaders::builder(provider.config(None).client_credentials().build()).build();
    assert!(
        matches!(none, Err(Error::Config(_))),
        "an origin is required"
    );
}

#[tokio::test]
async fn dpop_headers_carry_a_proof_for_the_method_and_url_and_answer_a_nonce_once() {
    let provider = TestProvider::start().await;
    provider.set_dpop_nonce_required(true);
    let config = authed::OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .dpop(SigningAlgorithm::EdDSA)
        .build()
        .unwrap();
    let auth = AuthHeaders::builder(config.client_credentials().build())
        .allow_origin(provider.api_url())
        .build()
        .unwrap();
    let url = format!("{}items/1", provider.api_url());
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    assert!(request.headers()["dpop"].is_sensitive());
    assert!(
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    // The provider verifies the proof: signature, htm, htu, ath, jti, nonce.
    assert_eq!(get(&mut request, &url).await.unwrap(), (StatusCode::OK, 1));
    provider.rotate_dpop_nonce();
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    assert_eq!(
        get(&mut request, &url).await.unwrap(),
        (StatusCode::OK, 2),
        "one nonce retry, {:?}",
        provider.dpop_refusals()
    );
    assert_eq!(
        provider.token_requests(),
        2,
        "the token request's own nonce dance only"
    );
}

async fn refusing(challenge: &str) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(path("/api"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge))
        .mount(&api)
        .await;
    api
}

#[tokio::test]
async fn answers_that_a_new_attempt_cannot_fix_are_typed_errors() {
    // A static token: nothing to refresh.
    let api = refusing(r#"Bearer error="invalid_token""#).await;
    let auth = AuthHeaders::builder(StaticToken::new("t"))
        .allow_origin(api.uri())
        .build()
        .unwrap();
    let url = format!("{}/api", api.uri());
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    let err = get(&mut request, &url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(u) if !u.refreshable),
        "{err:?}"
    );
    assert_eq!(api.received_requests().await.unwrap().len(), 1);

    // Another challenge: not the token's fault, so no refresh.
    let api = refusing(r#"Bearer error="insufficient_scope", scope="admin""#).await;
    let provider = TestProvider::start().await;
    let auth = AuthHeaders::builder(provider.config(None).client_credentials().build())
        .allow_origin(api.uri())
        .build()
        .unwrap();
    let url = format!("{}/api", api.uri());
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    let err = get(&mut request, &url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(u) if u.error.as_deref() == Some("insufficient_scope")),
        "{err:?}"
    );
    assert_eq!(provider.token_requests(), 1);

    // A token that a fresh one does not fix either: one refresh, then the error.
    let api = refusing(r#"Bearer error="invalid_token""#).await;
    let auth = AuthHeaders::builder(provider.config(None).client_credentials().build())
        .allow_origin(api.uri())
        .build()
        .unwrap();
    let url = format!("{}/api", api.uri());
    let mut request = auth.request(Method::GET, &url).await.unwrap();
    let err = get(&mut request, &url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(u) if u.retried),
        "{err:?}"
    );
    assert_eq!(api.received_requests().await.unwrap().len(), 2);
}
